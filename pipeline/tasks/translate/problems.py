"""Paired problems built from any image dataset (`data.translate`): each maps an image in [-1, 1] to
the degraded input a translator learns to undo. Deterministic: the same image always gives the same
input, so the pairs need no storage and the test inputs are the same for every variant.

- `sr4`: 4x super-resolution. Each 4x4 block averaged (area downsampling, 28x28 -> 7x7) and shown at
  full size (nearest): many digits fit one blurry input.
- `inpaint`: completion. The bottom half replaced by grey (0, the middle of [-1, 1]): many endings fit one top.
- `edges`: an edge map (Sobel gradient magnitude) to the image it came from.

`comparison_grid` is how a pair is shown everywhere (samples.png, MLflow, `gan translate`): input | outputs | truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.registry import Registry


@dataclass(frozen=True)
class Problem:
    name: str
    degrade: Callable[[Tensor], Tensor]   # N x C x H x W images in [-1, 1] -> inputs of the same shape
    description: str


PROBLEMS: Registry[Problem] = Registry("translation problem")


def sr4(x: Tensor) -> Tensor:
    """Area-downsample by 4, then back to full size by repeating each pixel (the input G sees)."""
    h, w = x.shape[-2:]
    if h % 4 or w % 4:
        raise ConfigError(f"data.translate: sr4 needs image sides divisible by 4, got {h}x{w}; "
                          f"set data.image_size to a multiple of 4")
    return F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")


def inpaint(x: Tensor) -> Tensor:
    """The bottom half masked with grey (0)."""
    out = x.clone()
    out[..., x.shape[-2] // 2:, :] = 0.0
    return out


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def edges(x: Tensor) -> Tensor:
    """Sobel gradient magnitude of each channel of the image in [0, 1], clipped to [0, 1], as [-1, 1]."""
    c = x.shape[1]
    unit = (x.float() + 1) / 2
    kx = SOBEL_X.to(x.device).expand(c, 1, 3, 3)
    ky = SOBEL_X.T.to(x.device).expand(c, 1, 3, 3)
    padded = F.pad(unit, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kx, groups=c), F.conv2d(padded, ky, groups=c)
    magnitude = (gx.square() + gy.square()).sqrt() / 4  # a full black-to-white step gives 1
    return (magnitude.clamp(max=1.0) * 2 - 1).to(x.dtype)


PROBLEMS.add("sr4", Problem("sr4", sr4, "4x super-resolution: 7x7 block means to the 28x28 image"))
PROBLEMS.add("inpaint", Problem("inpaint", inpaint, "completion: the top half to the whole image"))
PROBLEMS.add("edges", Problem("edges", edges, "edges to image: the Sobel edge map to the image"))


def comparison_grid(sources: Tensor, outputs: Tensor, targets: Tensor | None) -> Tensor:
    """uint8 grid, one row per input: input | each of the K outputs (K x N x C x H x W) | truth (if given)."""
    from pipeline.images import image_grid  # here: the prepare stage checks problem names, and draws nothing

    rows = [torch.cat([sources[i:i + 1], outputs[:, i], *([targets[i:i + 1]] if targets is not None else [])])
            for i in range(len(sources))]
    return image_grid(torch.cat(rows), nrow=outputs.shape[0] + 1 + (targets is not None))
