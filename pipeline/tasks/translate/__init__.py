"""Task translate: paired image-to-image translation (pix2pix) on the lab's image datasets.

`problems` builds each training pair from one image (a degraded input, the image as the target), `train` the run
(the U-Net G of `pipeline.models.unet` and its PatchGAN D, one iteration) and its held-out check, and `task` the
task's side of the contract (`TranslateTask`). The metrics that show a reconstruction loss blurs and an adversarial
one commits are `pipeline.metrics.translation`, shared with task cycle.
"""

from pipeline.tasks.translate.task import TranslateTask

__all__ = ["TranslateTask"]
