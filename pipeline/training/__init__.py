"""The one training loop and what every task's training shares:

- `loop.py`: `run_loop`, which resumes, drives a task's iterations, logs, checks and checkpoints (`TaskRun` and
  `Check` are what a task provides)
- `parts.py`: the critic-step schedule and freezing a player while the other's graph is built
- `historical.py`: historical averaging, hooked into an optimizer

Each task's own training lives in its package (`pipeline.tasks.<name>`); `pipeline.tasks.train` trains any of them.
The resumable state's file format lives with the other formats, in `pipeline.checkpoint`.
"""

from pipeline.training.loop import Check, TaskRun, run_loop
from pipeline.training.parts import critic_steps, frozen

__all__ = ["Check", "TaskRun", "critic_steps", "frozen", "run_loop"]
