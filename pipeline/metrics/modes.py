"""Mode-collapse metrics (cheap: run during training too).

Protocols, so numbers can stand next to published tables:
- 2D mixtures (VEEGAN, PacGAN): a generated point is high quality when it lies within 3 std of its
  nearest mode; modes captured = modes that are the nearest mode of at least one high-quality
  point; reverse KL = KL(p_hat || uniform), p_hat the histogram of high-quality points over modes.
- Stacked MNIST (VEEGAN setting): each channel labelled by a digit classifier; modes = distinct
  digit triples among the samples (of 1000); KL(p_hat || uniform over 1000).
- Labelled images: classes covered (at least a set share of the expected count) and
  KL(generated class histogram || real class histogram).
"""

from __future__ import annotations

import torch
from torch import Tensor


def kl_divergence(p: Tensor, q: Tensor, eps: float = 1e-10) -> float:
    """KL(p || q) in nats for two histograms (normalised here); 0 log 0 = 0. Where q is 0 but p
    is not, q is floored at `eps` so the result is large and finite rather than inf."""
    p = p.double() / p.sum()
    q = q.double() / q.sum()
    mask = p > 0
    return float((p[mask] * (p[mask].log() - q[mask].clamp_min(eps).log())).sum())


def class_histogram(labels: Tensor, num_classes: int) -> Tensor:
    return torch.bincount(labels.flatten().long(), minlength=num_classes)[:num_classes]


def class_coverage(generated_labels: Tensor, real_labels: Tensor, num_classes: int,
                   min_share: float) -> dict[str, float]:
    """Classes covered (a class counts when it receives at least `min_share` of its expected
    count under the real class distribution) and KL(generated histogram || real histogram)."""
    gen_hist = class_histogram(generated_labels, num_classes).double()
    real_hist = class_histogram(real_labels, num_classes).double()
    expected = real_hist / real_hist.sum() * gen_hist.sum()
    covered = int(((gen_hist >= min_share * expected) & (expected > 0)).sum())
    return {"classes_covered": covered, "class_kl": kl_divergence(gen_hist, real_hist)}


def mixture_assignments(points: Tensor, modes: Tensor, std: float) -> tuple[Tensor, Tensor]:
    """(nearest mode of each point, whether the point is high quality: within 3 std of it)."""
    nearest_dist, nearest = torch.cdist(points.double(), modes.double()).min(dim=1)  # (N,) each
    return nearest, nearest_dist < 3 * std


def mixture_metrics(points: Tensor, modes: Tensor, std: float) -> dict[str, float | None]:
    """The VEEGAN/PacGAN 2D protocol (see the module docstring)."""
    nearest, hq = mixture_assignments(points, modes, std)
    counts = torch.bincount(nearest[hq], minlength=len(modes)).double()
    captured = int((counts > 0).sum())
    # with no high-quality point the histogram is undefined: None (JSON null), never a made-up number
    reverse_kl = kl_divergence(counts, torch.ones(len(modes), dtype=torch.float64)) if captured else None
    return {"modes_captured": captured, "high_quality_frac": float(hq.double().mean()), "reverse_kl": reverse_kl}


def tuple_mode_metrics(labels: Tensor, num_modes: int) -> dict[str, float]:
    """Stacked MNIST (VEEGAN setting): modes = distinct digit triples seen; KL(p_hat || uniform)."""
    hist = class_histogram(labels, num_modes).double()
    return {"modes_covered": int((hist > 0).sum()), "mode_kl": kl_divergence(hist, torch.ones(num_modes))}
