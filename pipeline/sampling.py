"""Drawing from a generator: n samples in large batches, given latents, balanced labels.

The sample stage, the `gan` CLI, training-time checks and the latent-space tools all call these.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError


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


def draw_labels(n: int, num_classes: int, label: int | None) -> Tensor | None:
    """Labels for `n` samples: all `label` if given, else a balanced cycle; None when unconditional."""
    if label is None:
        return balanced_labels(n, num_classes)
    if not num_classes:
        raise ConfigError("--label needs a conditional variant (conditional: true); this one is unconditional")
    if not 0 <= label < num_classes:
        raise ConfigError(f"--label {label} is out of range; valid classes: 0..{num_classes - 1}")
    return torch.full((n,), label, dtype=torch.int64)


@torch.inference_mode()
def decode(generator: nn.Module, z: Tensor, labels: Tensor | None = None, batch_size: int = 1000) -> Tensor:
    """Images for the given latents (eval mode, on the generator's device; returned on CPU)."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = [generator(z[i:i + batch_size].to(device),
                     None if labels is None else labels[i:i + batch_size].to(device)).float().cpu()
           for i in range(0, len(z), batch_size)]
    generator.train(was_training)
    return torch.cat(out)
