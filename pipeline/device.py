"""Where and in what precision tensors are computed."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import ResolvedRecipe


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


def cpu_has_native_bf16() -> bool:
    """The CPU computes bf16 in hardware (AVX-512 BF16 or AMX; Linux). Elsewhere bf16 is emulated,
    slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA GPUs that support it (the documented norm there), fp32 everywhere else.

    Not bf16 on CPUs that compute it natively: the same params.yaml would then train in bf16 on one
    machine and fp32 on another and give different numbers (the saturating minimax MLP collapsed
    much further in bf16). Ask for `bf16` explicitly to take the speed on such CPUs; the precision
    used is written where `dvc exp show` shows it."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any]:
    """A context-manager factory: bf16 autocast on request (losses are computed on float32 logits), else a no-op."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def for_this_machine(recipe: ResolvedRecipe) -> ResolvedRecipe:
    """`train.device` and `train.precision` as this machine runs them (`auto`: CUDA, then MPS, then
    the CPU; bf16 on CUDA GPUs that have it, fp32 on every CPU), decided once: what trains, what the
    checkpoint's hash covers and what is logged and written to training.json are the same values.
    Idempotent."""
    device = resolve_device(recipe.train.device)
    precision = resolve_precision(recipe.train.precision, device)
    return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, device=str(device), precision=precision))
