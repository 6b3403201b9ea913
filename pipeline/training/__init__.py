"""GAN training, one concern a file:

- `setup.py`: the networks a recipe describes, their optimizers, the data on the device, and `Run`,
  the run's mutable state
- `steps.py`: one D step, one G step, and the iteration that schedules them
- `unrolled.py`: the unrolled GAN's differentiable look-ahead of D
- `ema.py`: the moving average of G's weights
- `loop.py`: `train`, the loop that resumes, logs, checks and checkpoints

The resumable state's file format lives with the other formats, in `pipeline.checkpoint`.
"""

from pipeline.training.ema import Ema
from pipeline.training.loop import Evaluator, TrainResult, train
from pipeline.training.setup import make_optimizers, model_spec
from pipeline.training.steps import critic_steps, d_step, draw_batch, g_step, samples_per_step

__all__ = ["Ema", "Evaluator", "TrainResult", "critic_steps", "d_step", "draw_batch", "g_step", "make_optimizers",
           "model_spec", "samples_per_step", "train"]
