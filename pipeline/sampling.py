"""Drawing from a trained generator: samples, grids, class grids, interpolation strips.

The sample stage, the `gan` CLI, training-time evaluation and the report all call these.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.io import load_torch
from pipeline.models import ModelSpec, build_models


def load_generator(path: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a generator from its checkpoint (weights_only load); returns (G in eval mode, checkpoint)."""
    ckpt = load_torch(path)
    spec = ModelSpec.from_dict(ckpt["spec"])
    generator, _ = build_models(ckpt["arch"], spec)
    generator.load_state_dict(ckpt["state_dict"])
    return generator.to(device).eval(), ckpt


def balanced_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor | None:
    """0, 1, ..., K-1, 0, 1, ... : every class equally often (None when unconditional)."""
    return torch.arange(n, device=device) % num_classes if num_classes else None


@torch.inference_mode()
def generate(generator: nn.Module, n: int, z_dim: int, num_classes: int = 0, labels: Tensor | None = None,
             seed: int = 0, batch_size: int = 1000, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor | None]:
    """n samples (float32, on CPU) in large batches; labels default to a balanced cycle of classes."""
    was_training = generator.training
    generator.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    if labels is None:
        labels = balanced_labels(n, num_classes, device)
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z = torch.randn(m, z_dim, device=device, generator=gen)
        y = None if labels is None else labels[start:start + m].to(device)
        out.append(generator(z, y).float().cpu())
    generator.train(was_training)
    return torch.cat(out), None if labels is None else labels.cpu()


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats -> [0, 255] uint8, as image files and torch-fidelity expect."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_grid(x: Tensor, nrow: int) -> Tensor:
    """A grid (C x H x W, uint8) of images in [-1, 1], with a thin border between tiles."""
    from torchvision.utils import make_grid

    return make_grid(to_uint8(x), nrow=nrow, padding=2, pad_value=255)


def save_png(image_uint8: Tensor, path) -> None:
    from PIL import Image

    from pipeline.io import atomic_path

    array = image_uint8.permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")


def draw_labels(n: int, num_classes: int, label: int | None) -> Tensor | None:
    """Labels for `n` samples: all `label` if given, else a balanced cycle; None when unconditional."""
    from pipeline.errors import ConfigError

    if label is None:
        return balanced_labels(n, num_classes)
    if not num_classes:
        raise ConfigError("--label needs a conditional variant (conditional: true); this one is unconditional")
    if not 0 <= label < num_classes:
        raise ConfigError(f"--label {label} is out of range; valid classes: 0..{num_classes - 1}")
    return torch.full((n,), label, dtype=torch.int64)
