"""Voxel grids as pictures: each shape seen along its three axes, every ray shaded by the depth of the first occupied
voxel it meets (nearer is lighter), so a sphere, a cube and a torus read at a glance without a 3D renderer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from pipeline.images import image_grid, save_png

UPSCALE = 4  # a 16^3 grid's views become 64 x 64 pixels


def depth_views(volumes: Tensor) -> Tensor:
    """(N, 1, D, H, W) occupancy (occupied > 0) -> (N, 1, S, 3 S) images in [-1, 1]: the views along depth, height and
    width side by side, background -1, the nearest surface +1, the far side of the grid -0.4."""
    occupied = volumes[:, 0] > 0
    side = occupied.shape[-1]
    views = []
    for axis in (1, 2, 3):
        hit = occupied.any(dim=axis)
        first = occupied.float().argmax(dim=axis).float()  # the first occupied index along the ray
        shade = 1.0 - 1.4 * first / max(side - 1, 1)
        views.append(torch.where(hit, shade, torch.full_like(shade, -1.0)))
    images = torch.cat(views, dim=2).unsqueeze(1)
    return images.repeat_interleave(UPSCALE, 2).repeat_interleave(UPSCALE, 3)


def save_voxel_grid(volumes: Tensor, per_row: int, path: Path) -> None:
    """Each volume's three depth views, `per_row` volumes a row."""
    save_png(image_grid(depth_views(volumes), per_row), path)


def save_voxel_strip(volumes: Tensor, steps: int, path: Path) -> None:
    """Walks of `steps` volumes a row (an interpolation), each shown by its three views stacked vertically."""
    views = depth_views(volumes)
    n, c, s, _ = views.shape
    stacked = views.reshape(n, c, s, 3, s).permute(0, 1, 3, 2, 4).reshape(n, c, 3 * s, s)
    save_png(image_grid(stacked, steps), path)
