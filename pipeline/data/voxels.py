"""A procedural dataset of voxel shapes for the 3D GAN (Wu et al. 2016 trains on ShapeNet's chairs, cars and tables;
nothing like it is available offline, so the lab draws its own): cubes, spheres, cylinders, cones and tori at random
sizes, positions and orientations, voxelised on a side x side x side grid. Deterministic from a seed: the same seed
gives the same shapes on every machine (CPU torch, float64 geometry).

Each shape is an implicit function of the voxel centres' coordinates in [-1, 1]^3, taken in the shape's own frame
(a uniformly random rotation, a centre up to 0.1 from the grid's centre on each axis); a voxel is occupied when its
centre is inside. Every shape lies within 0.95 of its centre (inside the grid), and the thinnest part, a torus's tube,
is at least 1.7 voxels across at side 16.
"""

from __future__ import annotations

import torch

SHAPES = ("cube", "sphere", "cylinder", "cone", "torus")


def random_rotations(n: int, gen: torch.Generator) -> torch.Tensor:
    """n rotation matrices uniform over SO(3) (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2)).unsqueeze(1)
    flip = torch.det(q) < 0
    q[flip, :, 0] = -q[flip, :, 0]
    return q


def inside(shape: str, p: torch.Tensor, size: torch.Tensor, aspect: torch.Tensor) -> torch.Tensor:
    """Occupancy of points `p` (n, V, 3) in each shape's frame; `size` (n,) its scale, `aspect` (n,) a second
    proportion (height, or the torus's tube)."""
    x, y, z = p.unbind(-1)
    s, a = size[:, None], aspect[:, None]
    radial = torch.sqrt(x * x + y * y)
    if shape == "cube":
        return p.abs().amax(-1) <= 0.5 * s
    if shape == "sphere":
        return p.norm(dim=-1) <= 0.75 * s
    if shape == "cylinder":
        return (radial <= 0.45 * s) & (z.abs() <= 0.6 * s * a)
    if shape == "cone":
        h = 0.6 * s * a
        return (z.abs() <= h) & (radial <= 0.55 * s * (h - z) / (2 * h))
    if shape == "torus":
        tube = 0.25 * s * a
        return (radial - 0.55 * s).pow(2) + z * z <= tube * tube
    raise ValueError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")


def voxel_shapes(per_class: int, side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): `per_class` shapes of each class as occupancy (N, 1, side, side, side) bool, class ids (N,), classes
    interleaved (0, 1, 2, 3, 4, 0, ...)."""
    gen = torch.Generator().manual_seed(seed)
    centres = (torch.arange(side, dtype=torch.float64) + 0.5) / side * 2 - 1
    grid = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), dim=-1).reshape(1, -1, 3)
    volumes = []
    for shape in SHAPES:
        rotation = random_rotations(per_class, gen)
        size = 0.6 + 0.25 * torch.rand(per_class, generator=gen, dtype=torch.float64)    # 0.6 .. 0.85
        aspect = 0.8 + 0.4 * torch.rand(per_class, generator=gen, dtype=torch.float64)
        centre = 0.1 * (2 * torch.rand(per_class, 1, 3, generator=gen, dtype=torch.float64) - 1)
        local = torch.einsum("nvi,nij->nvj", grid - centre, rotation)  # (R^T (p - c))^T = (p - c)^T R
        volumes.append(inside(shape, local, size, aspect).reshape(per_class, 1, side, side, side))
    x = torch.stack(volumes, dim=1).reshape(-1, 1, side, side, side)  # interleaved by class
    y = torch.arange(len(SHAPES)).repeat(per_class)
    return x, y
