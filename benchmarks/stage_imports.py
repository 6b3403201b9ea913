"""Seconds each DVC stage spends importing modules (its own and, lazily, the libraries it uses),
from `python -X importtime -m stages.<stage> ...` run in a repository where `dvc repro` has run.
Each stage is a new process, so this is paid once per stage and run.

    python benchmarks/stage_imports.py --repo /path/to/built/repo [--variant dcgan]

Prints, per stage, the total import time and the most expensive top-level imports. The stages
really run (their outputs are rewritten with the same values); MLflow tracking is turned off.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def top_level_imports(log: str) -> Counter:
    """Cumulative microseconds of every import made at the top of the import tree."""
    totals: Counter = Counter()
    for match in LINE.finditer(log):
        _, cumulative, indent, name = match.groups()
        if not indent:
            totals[name.split(".")[0]] += int(cumulative)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--variant", default="dcgan")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args()
    stages = {"prepare": [], "classifier": [], "train": [args.variant, "--seed", args.seed],
              "sample": [args.variant, "--seed", args.seed], "evaluate": [args.variant, "--seed", args.seed],
              "report": []}
    env = {**os.environ, "GAN_LAB_TRACKING": "off"}
    print(f"{'stage':<11} {'imports (s)':>11}  largest")
    for stage, extra in stages.items():
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", f"stages.{stage}", *extra], cwd=args.repo,
                              env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"stages.{stage} failed:\n{done.stderr[-2000:]}")
        totals = top_level_imports(done.stderr)
        largest = ", ".join(f"{name} {us / 1e6:.2f}" for name, us in totals.most_common(5))
        print(f"{stage:<11} {sum(totals.values()) / 1e6:>11.2f}  {largest}")
    gan = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pipeline.cli"], capture_output=True,
                         text=True, cwd=args.repo)
    print(f"{'gan (cli)':<11} {sum(top_level_imports(gan.stderr).values()) / 1e6:>11.2f}")


if __name__ == "__main__":
    main()
