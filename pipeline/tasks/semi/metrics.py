"""What task semi measures: how many test images D misclassifies, beside the lab's classifier trained on the
same labels alone (`classification_baseline`) and on every label (the classifier stage's)."""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.data import Prepared
from pipeline.tasks.semi.networks import SemiDiscriminator


@torch.no_grad()
def count_errors(discriminator: SemiDiscriminator, x: Tensor, y: Tensor, batch_size: int = 1000) -> int:
    """How many of the images D classifies wrongly (eval mode: no noise)."""
    was_training = discriminator.training
    discriminator.eval()
    device = next(discriminator.parameters()).device
    wrong = sum(int((discriminator(x[i:i + batch_size].to(device)).argmax(1).cpu() != y[i:i + batch_size]).sum())
                for i in range(0, len(x), batch_size))
    discriminator.train(was_training)
    return wrong


def classification_baseline(prepared: Prepared, labelled: Tensor, seed: int, steps: int = 300,
                            lr: float = 1.0e-3) -> torch.nn.Module:
    """The lab's classifier (`pipeline.metrics.classifier`) trained on the labelled images alone: what the
    same labels give without the unlabelled images and the GAN. `steps` Adam steps of batch 100 (the
    labelled set, repeated) with the classifier's shift augmentation."""
    from pipeline.config import ClassifierConfig
    from pipeline.metrics.classifier import train_classifier

    x, y = prepared.x_train[labelled.cpu()], prepared.y_train[labelled.cpu()]
    reps = -(-100 * steps // len(x))  # enough copies for `steps` batches of 100 in one epoch
    x_rep, y_rep = x.repeat(reps, 1, 1, 1)[:100 * steps], y.repeat(reps)[:100 * steps]
    cfg = ClassifierConfig(epochs=1, batch_size=100, lr=lr, seed=seed)
    return train_classifier(x_rep, y_rep, prepared.x_test[:1], prepared.y_test[:1], prepared.num_classes, cfg,
                            progress=False).model


def semi_errors(model: torch.nn.Module, x: Tensor, y: Tensor) -> int:
    from pipeline.metrics.classifier import classify

    return int((classify(model, x) != y).sum())
