"""What a CycleGAN run's sampling and evaluation need, without its training: both domains at A's size (`Domains`),
G applied in batches, the test images translated and back (`Translations`), the picture of them and the metrics of
both directions (see `pipeline.tasks.cycle.train` for what each metric is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.data import Prepared
from pipeline.errors import ConfigError
from pipeline.images import image_grid

SAMPLE_ROWS = 8


def to_size(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Images resized (bilinear) to `shape` = (C, H, W); channels must agree."""
    if x.shape[1] != shape[0]:
        raise ConfigError(f"data.cycle_with: the two domains need the same number of channels, got {x.shape[1]} "
                          f"and {shape[0]}")
    if tuple(x.shape[-2:]) == tuple(shape[-2:]):
        return x
    return F.interpolate(x.float(), size=tuple(shape[-2:]), mode="bilinear", align_corners=False).clamp(-1, 1)


@dataclass
class Domains:
    """Both domains' images at A's size; labels only for evaluation (training never sees them)."""

    a_train: Tensor
    b_train: Tensor
    a_test: Tensor
    b_test: Tensor
    a_labels: Tensor | None
    b_labels: Tensor | None
    b_native: tuple[int, ...]   # B's own C, H, W: what B's classifier reads


def domains(a: Prepared, b: Prepared) -> Domains:
    for p in (a, b):
        if p.kind != "image":
            raise ConfigError(f"task cycle needs two image datasets; {p.name!r} is {p.kind!r} data")
    shape = a.data_shape
    return Domains(a.x_train, to_size(b.x_train, shape), a.x_test, to_size(b.x_test, shape), a.y_test, b.y_test,
                   b.data_shape)


@torch.no_grad()
def apply(generator: nn.Module, x: Tensor, batch_size: int = 500) -> Tensor:
    """G on `x`, batched, in eval mode (there is no dropout: deterministic), on the CPU."""
    device = next(generator.parameters()).device
    was = generator.training
    generator.eval()
    out = torch.cat([generator(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    generator.train(was)
    return out


def sample_grid(m: Any, a: Tensor, b: Tensor) -> Tensor:
    """Rows a | G_AB(a) | G_BA(G_AB(a)), then b | G_BA(b) | G_AB(G_BA(b)): uint8."""
    ab, ba = apply(m.g_ab, a), apply(m.g_ba, b)
    rows = torch.stack([a.cpu(), ab, apply(m.g_ba, ab), b.cpu(), ba, apply(m.g_ab, ba)])  # 6 x N x C x H x W
    first, second = rows[:3].transpose(0, 1).flatten(0, 1), rows[3:].transpose(0, 1).flatten(0, 1)
    return image_grid(torch.cat([first, second]), nrow=3)


@dataclass
class Translations:
    """Each domain's test images translated (ab: A to B, ba: B to A) and translated back (aba, bab)."""

    ab: Tensor
    ba: Tensor
    aba: Tensor
    bab: Tensor

    @classmethod
    def of(cls, m: Any, a: Tensor, b: Tensor) -> "Translations":
        ab, ba = apply(m.g_ab, a), apply(m.g_ba, b)
        return cls(ab, ba, apply(m.g_ba, ab), apply(m.g_ab, ba))


def cycle_metrics(tr: Translations, a: Tensor, b: Tensor, a_labels: Tensor | None, b_labels: Tensor | None,
                  classifiers: tuple[nn.Module | None, nn.Module | None], b_native: tuple[int, ...],
                  fid: bool = True) -> dict[str, float]:
    """Both directions' label accuracy, cycle error and (with `fid`) classifier FID. `classifiers`: (A's, B's)."""
    from pipeline.metrics.classifier import classify
    from pipeline.metrics.fidelity import classifier_features
    from pipeline.metrics.frechet import frechet_distance, gaussian
    from pipeline.metrics.translation import l1_error

    a, b = a.cpu(), b.cpu()
    out = {"cycle_l1_a": l1_error(tr.aba, a), "cycle_l1_b": l1_error(tr.bab, b)}
    clf_a, clf_b = classifiers
    # direction, translated, the untranslated source, the target domain's test images, the target domain's
    # classifier and the size it reads, the source labels
    for name, translated, source, target, clf, size, labels in (
            ("ab", tr.ab, a, b, clf_b, b_native, a_labels), ("ba", tr.ba, b, a, clf_a, tuple(a.shape[1:]), b_labels)):
        if clf is None:
            continue
        if labels is not None:
            for key, x in ((f"accuracy_{name}", translated), (f"accuracy_{name}_untranslated", source)):
                out[key] = float((classify(clf, to_size(x, size)) == labels.cpu()).float().mean())
        if fid:
            feats = [classifier_features(clf, to_size(x, size)) for x in (translated, target)]
            out[f"fid_classifier_{name}"] = frechet_distance(gaussian(feats[0]), gaussian(feats[1]))
    return out
