"""A small CNN trained on the real labelled data: evaluation's feature extractor and mode labeller.

Its 128-d penultimate layer plays the role Inception's pool3 plays in standard FID; its argmax
labels generated images for the mode-collapse metrics. It is a measuring instrument, so it lives
with the metrics, apart from the GAN models (editing it does not touch the training code).
Its checkpoint format: `pipeline.checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from pipeline.config import ClassifierConfig

FEATURE_DIM = 128


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class Classifier(nn.Module):
    """Input: N x C x H x W in [-1, 1] (H, W >= 8). Output: logits (N x K); `features` gives N x 128."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.channels, self.num_classes = channels, num_classes
        self.body = nn.Sequential(
            *_block(channels, 32), *_block(32, 32), nn.MaxPool2d(2),  # 32 x 14 x 14
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d(2),        # 64 x 7 x 7
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),                    # 256
            nn.Linear(256, FEATURE_DIM), nn.ReLU(True),               # 128: the FID features
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@dataclass
class ClassifierResult:
    model: Classifier
    test_accuracy: float
    n_test: int


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to `max_shift` pixels (augmentation), filling with background -1."""
    n, _, h, w = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0] / w, 2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.inference_mode()
def accuracy(model: Classifier, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def train_classifier(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                     num_classes: int, cfg: ClassifierConfig, progress: bool = True) -> ClassifierResult:
    """Deterministic (seeded, CPU) supervised training with light shift augmentation."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = Classifier(x_train.shape[1], num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, len(x_train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="classifier", disable=None if progress else True)
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb = random_shift(x_train[idx], max(1, x_train.shape[-1] // 14), gen)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return ClassifierResult(model, accuracy(model, x_test, y_test), len(x_test))


class ChannelwiseClassifier(nn.Module):
    """Stacked MNIST: one digit classifier applied to each channel. Its logits are the joint
    log-probabilities of the 10^C digit tuples (label 100 a + 10 b + c), its features the
    per-channel features side by side."""

    def __init__(self, base: Classifier, channels: int) -> None:
        super().__init__()
        self.base, self.channels = base, channels
        self.num_classes = base.num_classes ** channels

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([self.base.features(x[:, c:c + 1]) for c in range(self.channels)], dim=1)

    def head(self, features: Tensor) -> Tensor:
        k = self.base.num_classes
        joint = torch.zeros(features.shape[0], *([1] * self.channels), device=features.device)
        for c, part in enumerate(features.split(FEATURE_DIM, dim=1)):
            shape = [features.shape[0]] + [1] * self.channels
            shape[1 + c] = k
            joint = joint + F.log_softmax(self.base.head(part), dim=1).reshape(shape)
        return joint.reshape(features.shape[0], -1)  # index 100 a + 10 b + c for 3 channels

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@torch.inference_mode()
def classify(classifier: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Argmax labels of images in [-1, 1], batched (on the classifier's device), returned on the CPU."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier(x[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.inference_mode()
def class_probabilities(classifier: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """softmax(classifier(x)) for images in [-1, 1], batched, on the CPU."""
    device = next(classifier.parameters()).device
    return torch.cat([torch.softmax(classifier(x[i:i + batch_size].to(device)).float(), dim=1).cpu()
                      for i in range(0, len(x), batch_size)])
