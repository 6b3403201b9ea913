"""Task stack: StackGAN (Zhang et al. 2017), digits from descriptions in two stages.

- `attributes.py`: each digit's measured thickness, slant and width, their bins, the descriptions and their embedding
- `networks.py`: conditioning augmentation, Stage I and Stage II G, the matching-aware D, the one-stage baseline
- `train.py`: the run the training loop drives (Stage I, then Stage II)
- `metrics.py`: does a digit match its description; FID; one description's variety
- `task.py`: the task's side of the contract (`StackTask`)
"""

from pipeline.tasks.stack.task import StackTask

__all__ = ["StackTask"]
