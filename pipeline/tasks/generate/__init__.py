"""Task generate: a GAN that draws images (or 2D points) from noise, the course's main line.

- `setup.py`: the networks a recipe describes, their optimizers, the data on the device, and `Run`, the run's
  mutable state and its iteration
- `steps.py`: one D step, one G step, and the iteration that schedules them
- `unrolled.py`: the unrolled GAN's differentiable look-ahead of D
- `ema.py`: the moving average of G's weights
- `task.py`: the task's side of the contract (`GenerateTask`): its keys, its check during training, what the train
  stage saves, the sample and evaluate stages

Only `task.py` loads with the registry (`pipeline.tasks`); the training code loads where a variant trains.
"""

from pipeline.tasks.generate.task import GenerateCheck, GenerateTask

__all__ = ["GenerateCheck", "GenerateTask"]
