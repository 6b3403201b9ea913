"""Task semi: a classifier learnt from few labels with a GAN (Salimans et al. 2016, "Improved Techniques for
Training GANs", sec. 5). D is a K-class classifier whose real/fake decision comes from its logits; it learns
from `data.labels_per_class` labelled images per class, all the other training images without their labels,
and G's samples; G learns by feature matching. Networks: `networks`, the run and its check: `train`, the task's
side of the contract: `task` (`SemiTask`)."""

from pipeline.tasks.semi.task import SemiTask

__all__ = ["SemiTask"]
