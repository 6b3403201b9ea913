"""The latent space: interpolation, class grids, directions that control a class, feature
entanglement along them, and latent vector arithmetic (DCGAN)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError, GanLabError
from pipeline.metrics.classifier import class_probabilities
from pipeline.sampling import decode


def lerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation; t has shape (k,), z0 and z1 shape (d,) -> (k, d)."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (White 2016): stays at the typical radius of a Gaussian latent,
    where linear interpolation cuts through the low-norm middle the generator never saw."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega).abs() < 1e-6:  # (anti)parallel: slerp is undefined, lerp is exact
        return lerp(z0, z1, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


INTERPOLATIONS = {"linear": lerp, "spherical": slerp}


def interpolation_latents(z_dim: int, rows: int, steps: int, mode: str, seed: int) -> Tensor:
    """rows x steps latents: each row walks from one random point to another."""
    if mode not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {mode!r}; valid: {', '.join(INTERPOLATIONS)}")
    gen = torch.Generator().manual_seed(seed)
    ends = torch.randn(rows, 2, z_dim, generator=gen)
    t = torch.linspace(0, 1, steps)
    return torch.cat([INTERPOLATIONS[mode](ends[r, 0], ends[r, 1], t) for r in range(rows)])


def interpolation_strip(generator: nn.Module, z_dim: int, num_classes: int, rows: int = 4, steps: int = 10,
                        mode: str = "spherical", seed: int = 0, label: int | None = None) -> Tensor:
    """rows x steps images along latent interpolations (a conditional model keeps one class per row)."""
    z = interpolation_latents(z_dim, rows, steps, mode, seed)
    labels = None
    if num_classes:
        per_row = torch.arange(rows) % num_classes if label is None else torch.full((rows,), label)
        labels = per_row.repeat_interleave(steps)
    return decode(generator, z, labels)


def class_grid(generator: nn.Module, z_dim: int, num_classes: int, per_class: int, seed: int = 0) -> Tensor:
    """One row per class, the same latents in every row: class controls content, z controls style."""
    z = torch.randn(per_class, z_dim, generator=torch.Generator().manual_seed(seed)).repeat(num_classes, 1)
    return decode(generator, z, torch.arange(num_classes).repeat_interleave(per_class))


def feature_direction(generator: nn.Module, classifier: nn.Module, z_dim: int, target: int,
                      n: int = 256, seed: int = 0) -> Tensor:
    """A unit direction in z that raises the classifier's logit for `target`: the mean over n random
    latents of d logit_target(G(z)) / dz. Controllable generation without labels at training time."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed)).to(device).requires_grad_(True)
    with torch.enable_grad():
        logits = classifier(generator(z))
        (grad,) = torch.autograd.grad(logits[:, target].sum(), z)
    generator.train(was_training)
    direction = grad.mean(0)
    return (direction / direction.norm().clamp_min(1e-12)).cpu()


def walk_strip(generator: nn.Module, z_dim: int, direction: Tensor, rows: int = 4, steps: int = 9,
               strength: float = 3.0, seed: int = 0, start: Tensor | None = None) -> Tensor:
    """rows x steps images: z + alpha * direction for alpha from 0 to `strength` (latent norm units), from
    random z or from `start` (rows x z_dim, e.g. a projected image's z)."""
    z0 = torch.randn(rows, z_dim, generator=torch.Generator().manual_seed(seed)) if start is None else start.cpu()
    alphas = torch.linspace(0, strength, steps)
    z = (z0[:, None, :] + alphas[None, :, None] * direction[None, None, :]).reshape(rows * steps, z_dim)
    return decode(generator, z)


def direction_profile(generator: nn.Module, classifier: nn.Module, z_dim: int, direction: Tensor, n: int = 256,
                      steps: int = 9, strength: float = 3.0, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Feature entanglement along a latent direction: (alphas, mean class probabilities, steps x K)
    of G(z + alpha * direction) over n random z. A disentangled direction for class t raises
    p(t) and takes probability away from the others evenly; an entangled one drags particular
    other classes along (or pushes them away) as it goes."""
    z0 = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    alphas = torch.linspace(0, strength, steps)
    probs = [class_probabilities(classifier, decode(generator, z0 + a * direction)).mean(0) for a in alphas]
    return alphas, torch.stack(probs)


@dataclass
class Arithmetic:
    """Latent vector arithmetic (Radford et al. 2016): result = mean z(A) - mean z(B) + mean z(C)."""

    concepts: tuple[int, int, int]
    exemplars: Tensor       # 3 x per_concept x C x H x W: the samples whose z are averaged, per concept
    means: Tensor           # 3 x C x H x W: G(mean z) of each concept
    results: Tensor         # k x C x H x W: G(result + small noise), as the paper shows them
    result_classes: Tensor  # k: the classifier's reading of each result


def latent_arithmetic(generator: nn.Module, classifier: nn.Module, z_dim: int, concepts: tuple[int, int, int],
                      per_concept: int = 3, n: int = 2000, results: int = 8, noise: float = 0.25,
                      seed: int = 0) -> Arithmetic:
    """Draw n samples, let the classifier pick for each concept the `per_concept` samples it is most
    sure show it, average their z, and decode mean(A) - mean(B) + mean(C) (plus `noise`-scaled
    perturbations, as in the DCGAN paper). Raises GanLabError when the generator draws a concept
    too rarely to find its exemplars."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    probs = class_probabilities(classifier, decode(generator, z))
    chosen = []
    for concept in concepts:
        if not 0 <= concept < probs.shape[1]:
            raise GanLabError(f"concept {concept} is not a class; valid classes: 0..{probs.shape[1] - 1}")
        mine = (probs.argmax(1) == concept).nonzero().flatten()
        if len(mine) < per_concept:
            raise GanLabError(f"the generator drew class {concept} only {len(mine)} times in {n} samples; "
                              f"latent arithmetic needs {per_concept} exemplars (a collapsed generator?)")
        chosen.append(mine[probs[mine, concept].topk(per_concept).indices])
    means = torch.stack([z[idx].mean(0) for idx in chosen])
    result = means[0] - means[1] + means[2]
    result_z = result + noise * torch.randn(results, z_dim, generator=gen)
    result_z[0] = result
    result_images = decode(generator, result_z)
    return Arithmetic(concepts, torch.stack([decode(generator, z[idx]) for idx in chosen]), decode(generator, means),
                      result_images, class_probabilities(classifier, result_images).argmax(1))
