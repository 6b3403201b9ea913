"""Task cycle: unpaired image-to-image translation (CycleGAN). `train` holds the run (both Gs and Ds, the image
pools, one iteration) and its check; `translations` the domains, the translated test images and their metrics (what
sampling and evaluating need, without the training code); `task` the task's side of the contract (`CycleTask`)."""

from pipeline.tasks.cycle.task import CycleTask

__all__ = ["CycleTask"]
