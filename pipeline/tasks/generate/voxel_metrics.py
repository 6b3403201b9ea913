"""What task voxel measures: a small 3D CNN trained on the real shapes (the instrument: its classes count the shape
classes a generator covers, its features give a Frechet distance), voxel IoU to the nearest real shape (memorisation:
a copy has IoU 1) and between generated shapes (diversity: a collapsed G's shapes overlap)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.config import ClassifierConfig

FEATURE_DIM = 64


class VoxelClassifier(nn.Module):
    """Input: N x 1 x S x S x S in [-1, 1] (S >= 8). Output: logits; `features`: N x 64."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv3d(1, 16, 3, padding=1), nn.BatchNorm3d(16), nn.ReLU(True), nn.MaxPool3d(2),
            nn.Conv3d(16, 32, 3, padding=1), nn.BatchNorm3d(32), nn.ReLU(True), nn.MaxPool3d(2),
            nn.AdaptiveAvgPool3d(2), nn.Flatten(), nn.Linear(32 * 8, FEATURE_DIM), nn.ReLU(True))
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def train_voxel_classifier(x: Tensor, y: Tensor, num_classes: int, cfg: ClassifierConfig) -> VoxelClassifier:
    """Seeded (`classifier.seed`), `classifier.epochs` passes of Adam over the training shapes with random flips
    (a shape's class does not change when it is mirrored); the same network on every call with the same data."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = VoxelClassifier(num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            xb = x[idx]
            for dim in (2, 3, 4):
                if torch.rand((), generator=gen) < 0.5:
                    xb = xb.flip(dim)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: VoxelClassifier, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """(labels, features as float64) of volumes `x`."""
    labels, features = [], []
    for start in range(0, len(x), batch_size):
        f = model.features(x[start:start + batch_size].float())
        features.append(f.double())
        labels.append(model.head(f).argmax(1))
    return torch.cat(labels), torch.cat(features)


def occupancy(x: Tensor) -> Tensor:
    """(N, V) float: 1 where a voxel is occupied (> 0)."""
    return (x.flatten(1) > 0).float()


def iou_matrix(a: Tensor, b: Tensor, batch_size: int = 1000) -> Tensor:
    """(len(a), len(b)) voxel IoU between the occupancy rows of `a` and `b` (an empty pair counts as IoU 0)."""
    sizes_b = b.sum(1)
    rows = []
    for start in range(0, len(a), batch_size):
        part = a[start:start + batch_size]
        inter = part @ b.T
        union = part.sum(1, keepdim=True) + sizes_b[None, :] - inter
        rows.append(torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)))
    return torch.cat(rows)


def nearest_iou(a: Tensor, reference: Tensor) -> Tensor:
    """Each shape of `a`'s IoU with its nearest (highest-IoU) shape in `reference`."""
    return iou_matrix(occupancy(a), occupancy(reference)).amax(1)


def pairwise_iou(x: Tensor, pairs: int, seed: int) -> float:
    """The mean IoU of `pairs` random pairs of distinct shapes of `x` (lower: more diverse)."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.randint(len(x), (pairs,), generator=gen)
    j = (i + torch.randint(1, len(x), (pairs,), generator=gen)) % len(x)
    a, b = occupancy(x[i]), occupancy(x[j])
    inter, union = (a * b).sum(1), ((a + b) > 0).float().sum(1)
    return float(torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).mean())


def voxel_metrics(samples: Tensor, prepared: Any, classifier: VoxelClassifier, real_stats: Any, min_share: float,
                  pairs: int, seed: int) -> tuple[dict[str, Any], Tensor]:
    """The shape-class coverage and KL, FID on the classifier's features against `real_stats`, the mean occupied
    share and the pairwise IoU of `samples`; and the classifier's labels of them."""
    from pipeline.metrics.frechet import frechet_distance, gaussian
    from pipeline.metrics.modes import class_coverage

    labels, features = predict(classifier, samples)
    metrics: dict[str, Any] = class_coverage(labels, prepared.y_train, prepared.num_classes, min_share)
    metrics["fid_classifier"] = frechet_distance(gaussian(features), real_stats)
    metrics["occupancy"] = float(occupancy(samples).mean())
    metrics["pairwise_iou"] = pairwise_iou(samples, pairs, seed)
    return metrics, labels
