"""Where and in what precision tensors are computed."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from pipeline.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; an unavailable explicit device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}; valid: auto, cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name} requested but CUDA is not available; use auto or cpu")
    return device


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any]:
    """A context-manager factory: bf16 autocast on request (losses are computed on float32 logits), else a no-op."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
