"""Progressive growing of GANs (Karras et al. 2018), as the reference's `networks2.py` (tkarras/progressive_growing_of_gans)
builds G and D: networks for every resolution from s0 x s0 up to the image (MNIST's 28 = 7 x 2^2: 7, 14, 28), of which
the training schedule (`train.progressive`, `ProgressiveSchedule`) uses the lowest first and fades each finer one in.

What the reference has and this module keeps:
- the level of detail `lod` (0: the full image; k: s0 x s0), a number G and D read at every call; between two integers
  the finer resolution fades in: G's output is lerp(toRGB(finer), upscale(toRGB(coarser)), frac(lod)) and D's features
  lerp(block(fromRGB(image)), fromRGB(downscale(image)), frac(lod)) (the "linear" structure);
- G's output is always the full image (the coarse one upscaled, nearest) and D always takes it (downscaled by average
  pooling to the level it works at), so sampling, evaluation and checkpoints see one image size;
- the real images D sees are blended the same way (`process_reals`: the reference's FadeLOD/UpscaleLOD);
- equalized learning rate: weights N(0, 1) scaled at every call by He's constant gain / sqrt(fan_in) (`Equalized*`);
- pixelwise feature normalisation in G after every convolution, and on the latent;
- leaky ReLU 0.2; nearest-neighbour upscaling, 2x2 average-pool downscaling; G's output linear (no tanh);
- the minibatch standard deviation (groups of 4) before D's last 3x3 convolution, then two dense layers.

Where it differs: widths follow the lab's `train.width` (width * 2^(k-1-l) channels at level l, width / 2 at the
top, at least 8) instead of the reference's 8192 / 2^res capped at 512; D's last dense layer is the lab's
discriminator head (an equalized linear layer, so conditioning and PacGAN work as for every architecture); the
schedule changes `lod` every step instead of every 4 minibatches. Levels above the current one are not computed
(the reference's "recursive" structure's saving), which is where progressive growing saves time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.models.common import (ARCHITECTURES, Discriminator, MinibatchStd, ModelSpec, input_channels,
                                    require_square_images, with_label)
from pipeline.models.dcgan import upsampling_plan

SQRT2 = math.sqrt(2.0)


class EqualizedLinear(nn.Linear):
    """A dense layer with the equalized learning rate: weights drawn N(0, 1), multiplied by gain / sqrt(fan_in) at
    every call, so Adam's per-weight step sizes are on the same scale for every layer (Karras et al. 2018, sec. 4.1)."""

    def __init__(self, n_in: int, n_out: int, gain: float = SQRT2) -> None:
        super().__init__(n_in, n_out)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(n_in)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Conv2d):
    """A same-padded convolution with the equalized learning rate (see `EqualizedLinear`)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = SQRT2) -> None:
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each pixel's feature vector scaled to unit mean square over the channels (sec. 4.2)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def upscale(x: Tensor, factor: int = 2) -> Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downscale(x: Tensor, factor: int = 2) -> Tensor:
    return x if factor == 1 else F.avg_pool2d(x, factor)


def process_reals(x: Tensor, lod: float) -> Tensor:
    """Real images as D sees them at level of detail `lod` (the reference's process_reals): averaged down to the
    coarser level, blended towards their own 2x-coarser version by frac(lod), and upscaled back to full size."""
    if lod <= 0:
        return x
    level = math.floor(lod)
    x = downscale(x, 2 ** level)
    frac = lod - level
    if frac > 0:
        x = torch.lerp(x, upscale(downscale(x)), frac)
    return upscale(x, 2 ** level)


def level_widths(width: int, k: int) -> list[int]:
    """Channels at each level l = 0 (s0 x s0) .. k (the image)."""
    return [max(8, width * 2 ** (k - 1 - level)) for level in range(k)] + [max(8, width // 2)]


class LevelOfDetail(nn.Module):
    """A network that reads `lod` (a float, saved in its state dict) at every call; `top` and `fade` say which
    levels a call computes."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.lod = k, 0.0

    def top(self) -> int:
        """The finest level in use: the one fading in, or the current one."""
        return self.k - math.floor(self.lod)

    def fade(self) -> float:
        """How much of the coarser level is still mixed into the top one (0 outside a fade)."""
        return self.lod - math.floor(self.lod)

    def get_extra_state(self) -> dict[str, float]:
        return {"lod": self.lod}

    def set_extra_state(self, state: dict[str, float]) -> None:
        self.lod = float(state["lod"])


class ProgressiveGenerator(LevelOfDetail):
    def __init__(self, spec: ModelSpec) -> None:
        channels, size = spec.data_shape[0], spec.data_shape[-1]
        s0, k = upsampling_plan(size, "progressive")
        super().__init__(k)
        self.s0, self.num_classes = s0, spec.num_classes
        nf = level_widths(spec.width, k)
        self.nf0 = nf[0]
        # the reference's 4x4 block: dense (gain sqrt(2)/4) to nf0 x s0 x s0, then a 3x3 convolution
        self.dense = EqualizedLinear(spec.z_dim + spec.num_classes, nf[0] * s0 * s0, gain=SQRT2 / 4)
        self.conv0 = EqualizedConv2d(nf[0], nf[0], 3)
        self.blocks = nn.ModuleList(  # level l: upscale, two 3x3 convolutions
            nn.ModuleList([EqualizedConv2d(nf[level - 1], nf[level], 3), EqualizedConv2d(nf[level], nf[level], 3)])
            for level in range(1, k + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(nf[level], channels, 1, gain=1.0) for level in range(k + 1))

    @staticmethod
    def _act(x: Tensor) -> Tensor:
        return pixel_norm(F.leaky_relu(x, 0.2))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = pixel_norm(with_label(z, y, self.num_classes))
        x = self._act(self.dense(x).view(z.shape[0], self.nf0, self.s0, self.s0))
        x = self._act(self.conv0(x))
        top, fade = self.top(), self.fade()
        coarser = x
        for conv_a, conv_b in self.blocks[:top]:
            coarser = x
            x = self._act(conv_b(self._act(conv_a(upscale(x)))))
        image = self.to_rgb[top](x)
        if fade > 0:  # the new level fading in over the upscaled coarser one
            image = torch.lerp(image, upscale(self.to_rgb[top - 1](coarser)), fade)
        return upscale(image, 2 ** (self.k - top))


class ProgressiveBody(LevelOfDetail):
    """D's body: fromRGB at the level it works at, a block (two 3x3 convolutions, 2x2 average pool) a level down to
    s0 x s0, the minibatch standard deviation as one more feature map, a 3x3 convolution and a dense layer."""

    def __init__(self, spec: ModelSpec) -> None:
        s0, k = upsampling_plan(spec.data_shape[-1], "progressive")
        super().__init__(k)
        nf = level_widths(spec.width, k)
        c_in = input_channels(spec)
        self.from_rgb = nn.ModuleList(EqualizedConv2d(c_in, nf[level], 1) for level in range(k + 1))
        self.blocks = nn.ModuleList(  # level l -> l - 1
            nn.ModuleList([EqualizedConv2d(nf[level], nf[level], 3), EqualizedConv2d(nf[level], nf[level - 1], 3)])
            for level in range(1, k + 1))
        self.minibatch_std = MinibatchStd(4)
        self.conv_last = EqualizedConv2d(nf[0] + 1, nf[0], 3)
        self.dense = EqualizedLinear(nf[0] * s0 * s0, nf[0])
        self.features = nf[0]

    def _block(self, level: int, h: Tensor) -> Tensor:
        conv_a, conv_b = self.blocks[level - 1]
        return downscale(F.leaky_relu(conv_b(F.leaky_relu(conv_a(h), 0.2)), 0.2))

    def forward(self, x: Tensor) -> Tensor:
        top, fade = self.top(), self.fade()
        image = downscale(x, 2 ** (self.k - top))
        h = F.leaky_relu(self.from_rgb[top](image), 0.2)
        for level in range(top, 0, -1):
            h = self._block(level, h)
            if level == top and fade > 0:  # the new level fading in over the coarser image's fromRGB
                h = torch.lerp(h, F.leaky_relu(self.from_rgb[top - 1](downscale(image)), 0.2), fade)
        std = self.minibatch_std(h)  # (N, 1): the group's mean standard deviation, one more constant feature map
        h = torch.cat([h, std[:, :, None, None].expand(-1, 1, *h.shape[2:])], dim=1)
        h = F.leaky_relu(self.conv_last(h), 0.2)
        return F.leaky_relu(self.dense(h.flatten(1)), 0.2)


@ARCHITECTURES.register("progressive")
def build_progressive(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    require_square_images(spec, "progressive")
    if spec.minibatch_std:
        raise ConfigError("train.minibatch_std: arch progressive has the minibatch standard deviation in its "
                          "discriminator already (before its last convolution, as the reference); remove it")
    body = ProgressiveBody(spec)
    discriminator = Discriminator(body, body.features, spec)
    discriminator.head = EqualizedLinear(discriminator.head.in_features, 1, gain=1.0)  # the reference's last dense
    return ProgressiveGenerator(spec), discriminator


def set_level_of_detail(lod: float, *modules: nn.Module | None) -> None:
    """Set `lod` on every progressive network inside `modules` (G, D, the EMA copy)."""
    for module in modules:
        if module is None:
            continue
        for m in module.modules():
            if isinstance(m, LevelOfDetail):
                m.lod = lod


def levels(module: nn.Module) -> int | None:
    """k, the number of doublings of a progressive network in `module` (None: not progressive)."""
    for m in module.modules():
        if isinstance(m, LevelOfDetail):
            return m.k
    return None


@dataclass(frozen=True)
class ProgressiveSchedule:
    """The reference's schedule (train.py's TrainingSchedule) in real images D has seen: `stages` resolutions, the
    coarsest first; each is trained alone for `stage_images`, then the next fades in over `fade_images`; the last
    resolution trains for the rest of the run. `s0` and `k`: the network's coarsest side and doublings."""

    stages: int
    stage_images: int
    fade_images: int
    s0: int
    k: int

    def __post_init__(self) -> None:
        if self.stages > self.k + 1:
            sides = ", ".join(str(self.s0 * 2 ** level) for level in range(self.k + 1))
            raise ConfigError(
                f"train.progressive: {self.stages} resolutions do not fit images of side {self.s0 * 2 ** self.k}, "
                f"which grow through {self.k + 1} ({sides}); set train.progressive to at most {self.k + 1}")

    @property
    def growth_images(self) -> int:
        """Real images until the full resolution is reached."""
        return (self.stages - 1) * (self.stage_images + self.fade_images)

    def lod(self, images: int) -> float:
        phase = self.stage_images + self.fade_images
        index, within = divmod(images, phase)
        lod = float(self.stages - 1 - index)
        if self.fade_images > 0:
            lod -= max(within - self.stage_images, 0) / self.fade_images
        return max(lod, 0.0)

    def describe(self, lod: float) -> dict[str, float]:
        """What the curves show: the side of the finest resolution in use and the new level's weight in a fade."""
        level = self.k - math.floor(lod)
        return {"resolution": float(self.s0 * 2 ** level), "fade_alpha": 1.0 - (lod - math.floor(lod))}


def schedule_for(generator: nn.Module, stages: int, stage_images: int, fade_images: int) -> ProgressiveSchedule:
    """The schedule of a progressive G (inside any wrapper), or a ConfigError when G is not progressive."""
    for m in generator.modules():
        if isinstance(m, ProgressiveGenerator):
            return ProgressiveSchedule(stages, stage_images, fade_images, m.s0, m.k)
    raise ConfigError(f"train.progressive: {stages} grows arch: progressive's networks only; set arch: progressive "
                      f"or train.progressive: 1")

