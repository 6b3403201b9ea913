"""Images in [-1, 1] <-> uint8, grids and PNG files: how every part of the lab shows and stores pictures."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from pipeline.io import atomic_path


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats -> [0, 255] uint8, as image files and torch-fidelity expect."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(x: Tensor) -> Tensor:
    """[0, 255] uint8 -> float32 in [-1, 1]: the inverse of `to_uint8`."""
    return x.float() / 127.5 - 1.0


def image_grid(x: Tensor, nrow: int, padding: int = 2) -> Tensor:
    """A grid (3 x H x W, uint8) of N images in [-1, 1], `nrow` a row, with a white border of `padding`
    pixels between tiles; grey images become RGB. The same picture torchvision's `make_grid(...,
    padding=2, pad_value=255)` draws (a test compares them), without the second of importing it."""
    tiles = to_uint8(x)
    if tiles.shape[1] == 1:
        tiles = tiles.expand(-1, 3, -1, -1)
    if len(tiles) == 1:
        return tiles[0].clone()
    n, c, h, w = tiles.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = torch.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), 255, dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        top, left = (i // cols) * (h + padding) + padding, (i % cols) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = tile
    return grid


def save_png(image_uint8: Tensor, path: str | Path) -> None:
    """A C x H x W uint8 image as a PNG, written atomically."""
    from PIL import Image

    array = image_uint8.permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")


VOXEL_UPSCALE = 4  # a 16^3 grid's views become 64 x 64 pixels


def depth_views(volumes: Tensor) -> Tensor:
    """Voxel grids as pictures without a 3D renderer: each shape seen along its three axes, every ray shaded by the
    depth of the first occupied voxel it meets (nearer is lighter). (N, 1, D, H, W) occupancy (occupied > 0) ->
    (N, 1, S, 3 S) images in [-1, 1]: the views along depth, height and width side by side, background -1, the
    nearest surface +1, the far side of the grid -0.4."""
    occupied = volumes[:, 0] > 0
    side = occupied.shape[-1]
    views = []
    for axis in (1, 2, 3):
        hit = occupied.any(dim=axis)
        first = occupied.float().argmax(dim=axis).float()  # the first occupied index along the ray
        shade = 1.0 - 1.4 * first / max(side - 1, 1)
        views.append(torch.where(hit, shade, torch.full_like(shade, -1.0)))
    images = torch.cat(views, dim=2).unsqueeze(1)
    return images.repeat_interleave(VOXEL_UPSCALE, 2).repeat_interleave(VOXEL_UPSCALE, 3)
