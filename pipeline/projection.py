"""Projecting an image into the latent space (iGAN, Zhu et al. 2016): the z whose G(z) is closest to it, found
by gradient descent on z from several random starts. Closeness is the pixel mean squared error plus
`feature_weight` x the squared distance of the lab classifier's features (the perceptual term; LPIPS's
network is not available offline). How far the best projection stays from a real image is what G cannot
draw: Bau et al. 2019 ("Seeing what a GAN cannot generate") read a generator's dropped modes from it.

z stays where the prior puts mass: after every step each coordinate is clipped to [-3, 3] (`Z_CLIP`). Every lab
generator takes standard normal noise (a uniform-prior G maps it to U(-1, 1) itself, `UniformPrior`), so this is
iGAN's clip to the uniform prior's support [-1, 1] up to 0.27% of the mass at each end ((-0.9973, 0.9973) after the
map); for a normal prior it keeps z within 3 standard deviations per coordinate, where 99.7% of the prior lies."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

Z_CLIP = 3.0  # standard deviations: each coordinate of z is kept in [-3, 3]


@dataclass
class Projection:
    z: Tensor               # N x z_dim: the best start's latent for each target
    images: Tensor          # N x C x H x W: G(z)
    pixel_error: Tensor     # N: mean squared pixel error of G(z) against the target (images in [-1, 1])
    path: Tensor            # K x N x C x H x W: G(z) along the optimisation (K snapshots, the last = images)


def project(generator: nn.Module, targets: Tensor, z_dim: int, *, classifier: nn.Module | None = None,
            labels: Tensor | None = None, starts: int = 4, steps: int = 200, lr: float = 0.05,
            feature_weight: float = 0.1, snapshots: int = 6, seed: int = 0) -> Projection:
    """Project every target (N x C x H x W in [-1, 1]) with `starts` random z each, optimised jointly with
    Adam for `steps` steps; keeps the start with the lowest final objective. `labels`: the class of each
    target for a conditional G. G and the classifier are in eval mode and unchanged; the global random
    state is not touched."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    n = len(targets)
    rows = targets.to(device).repeat_interleave(starts, 0)
    y = labels.to(device).repeat_interleave(starts, 0) if labels is not None else None
    z = torch.randn(n * starts, z_dim, generator=torch.Generator().manual_seed(seed)).to(device).requires_grad_(True)
    target_features = None
    if classifier is not None and feature_weight > 0:
        classifier.eval()
        with torch.no_grad():
            target_features = classifier.features(rows)
    opt = torch.optim.Adam([z], lr=lr)
    marks = {round(i * steps / (snapshots - 1)) for i in range(snapshots)} if snapshots > 1 else {steps}
    path = []
    for p in generator.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            for step in range(steps + 1):
                images = generator(z, y) if y is not None else generator(z)
                objective = (images - rows).pow(2).flatten(1).mean(1)
                if target_features is not None:
                    objective = objective + feature_weight * (classifier.features(images) - target_features).pow(2).mean(1)
                if step in marks:
                    path.append(images.detach())
                if step == steps:
                    break
                opt.zero_grad(set_to_none=True)
                objective.sum().backward()
                opt.step()
                with torch.no_grad():
                    z.clamp_(-Z_CLIP, Z_CLIP)
    finally:
        for p in generator.parameters():
            p.requires_grad_(True)
        generator.train(was_training)
    best = objective.detach().reshape(n, starts).argmin(1) + torch.arange(n, device=device) * starts
    images = path[-1][best]
    error = (images - targets.to(device)).pow(2).flatten(1).mean(1)
    return Projection(z.detach()[best].cpu(), images.cpu(), error.cpu(), torch.stack([p[best] for p in path]).cpu())


def projection_summary(error: Tensor, labels: Tensor | None, class_names: list[str] | None, worst: int = 3) -> dict:
    """The mean pixel error, and per class (with labels) its mean and the `worst` classes by it."""
    out: dict = {"projection_mse": float(error.mean()), "images": len(error)}
    if labels is not None and class_names is not None:
        per_class = {class_names[k]: float(error[labels == k].mean()) for k in labels.unique().tolist()}
        out["projection_mse_per_class"] = per_class
        out["projection_worst_classes"] = sorted(per_class, key=per_class.get, reverse=True)[:worst]
    return out
