"""benchmarks/gpu_check.py, the one script that measures the GPU path: without a CUDA GPU it says so and exits 0 (the
tests never need a GPU; the script's parts run where one is lent)."""

from __future__ import annotations

import runpy
import sys

import torch
from conftest import REPO


def test_without_a_gpu_it_says_so_and_measures_nothing(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py"])
    runpy.run_path(str(REPO / "benchmarks/gpu_check.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("no CUDA GPU on this machine") and "GPU path stays unmeasured" in out and "|" not in out


def test_a_part_that_cannot_run_says_why_and_the_others_go_on():
    checker = runpy.run_path(str(REPO / "benchmarks/gpu_check.py"))
    rows = []

    def missing():
        raise checker["SkipPart"]("no MNIST in data/raw/MNIST/raw")

    def broken():
        raise RuntimeError("CUDA out of memory\nmore")

    checker["timed"](rows, "needs MNIST", missing)
    checker["timed"](rows, "breaks", broken)
    checker["timed"](rows, "works", lambda: ("42 steps/s", "seed 0"))
    assert rows[0] == ("needs MNIST", "skipped: no MNIST in data/raw/MNIST/raw", "")
    assert rows[1] == ("breaks", "failed: RuntimeError: CUDA out of memory", "")
    assert rows[2][:2] == ("works", "42 steps/s (seed 0)") and rows[2][2].isdigit()
