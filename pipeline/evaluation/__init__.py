"""Evaluation, one floor above the measuring instruments: it picks the metrics a kind of data and a
recipe call for, feeds them the samples, and says where the caches live.

- `evaluate.py`: the evaluate stage's final metrics, mode histogram and FID protocols
- `checks.py`: the cheap metrics training logs every `train.eval_every` steps, and the
  "still improving" verdict

`pipeline.metrics` measures (features, FID, modes, diversity) and imports neither data kinds nor
storage nor report code; the kinds sit between the two.
"""
