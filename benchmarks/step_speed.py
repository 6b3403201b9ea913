"""The project's training step against a reference loop written the way pytorch/examples' DCGAN
script does it, on the same networks and batch, side by side in one run.

    python benchmarks/step_speed.py                   # CPU, and CUDA when present
    python benchmarks/step_speed.py --steps 40 --repeats 5 --device cpu

Reference (pytorch/examples dcgan/main.py): a shuffling DataLoader (num_workers 0 here: on a 2-core
machine worker processes only compete with the model, which would flatter the project), Sigmoid +
BCELoss, separate backward passes for the real and fake halves of the D loss, the G step reusing
D's fakes, and `.item()` on each loss every step. Project: `pipeline.training.train` with the shipped
DCGAN recipe (its own G and D, batch 64, 28x28 MNIST digits), logging and checks as the pipeline
does them. The reference runs `--steps` generator steps after a warm-up; the project runs whole
`train()` calls of `--steps` and of twice as many, and its step time is the difference divided by
`--steps` (so building the models and, with `--set compile=true`, compiling them cancel out: that
fixed cost per run is printed apart). They alternate, `--repeats` times, and the best time of each
counts. Prints ms per step and the ratio (reference / project: above 1 means the project is faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DataConfig, Recipe, TrainConfig  # noqa: E402
from pipeline.data import prepare_dataset  # noqa: E402
from pipeline.losses import LOSSES  # noqa: E402
from pipeline.models import build_models  # noqa: E402
from pipeline.tasks import train  # noqa: E402
from pipeline.tasks.generate.setup import model_spec  # noqa: E402
from pipeline.variants import resolve  # noqa: E402


def reference_loop(generator: nn.Module, discriminator: nn.Module, x: torch.Tensor, steps: int, batch_size: int,
                   z_dim: int, device: torch.device) -> float:
    """Seconds for `steps` iterations of the pytorch/examples DCGAN loop."""
    loader = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_prob = lambda images: torch.sigmoid(discriminator(images)).view(-1)  # noqa: E731  (the example's Sigmoid)
    done = 0
    start = time.perf_counter()
    while done < steps:
        for (real,) in loader:
            real = real.to(device)
            b = real.size(0)
            discriminator.zero_grad()
            err_d_real = criterion(d_prob(real), torch.full((b,), 1.0, device=device))
            err_d_real.backward()
            fake = generator(torch.randn(b, z_dim, device=device))
            output = d_prob(fake.detach())
            err_d_fake = criterion(output, torch.full((b,), 0.0, device=device))
            err_d_fake.backward()
            opt_d.step()
            generator.zero_grad()
            output = d_prob(fake)
            err_g = criterion(output, torch.full((b,), 1.0, device=device))
            err_g.backward()
            opt_g.step()
            _ = (err_d_real + err_d_fake).item(), err_g.item(), output.mean().item()  # the example's per-step print
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def project_loop(recipe: Recipe, data, steps: int) -> float:
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=steps))
    start = time.perf_counter()
    train(recipe, data, progress=False)
    if torch.cuda.is_available() and recipe.train.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(device_name: str, steps: int, repeats: int, **train_changes) -> tuple[float, float, float]:
    """(reference s/step, project s/step, project fixed s per run). The project's step time is
    (T(2n) - T(n)) / n over whole `train()` calls, so set-up and compilation cancel out; they are
    the fixed cost T(n) - n * step."""
    data = prepare_dataset("mnist5k", DataConfig())
    recipe, _ = resolve(Recipe(train=TrainConfig(device=device_name, log_every=25, eval_every=10**9,
                                                 checkpoint_every=10**9, **train_changes)))
    device = torch.device(device_name)
    spec = model_spec(recipe, data, LOSSES.get(recipe.loss))
    torch.manual_seed(0)
    generator, discriminator = (m.to(device) for m in build_models(recipe.arch, spec))
    x = data.x_train.to(device)
    reference_loop(generator, discriminator, x, 5, recipe.train.batch_size, recipe.train.z_dim, device)  # warm-up
    project_loop(recipe, data, 5)
    ref_times, short, long = [], [], []
    for _ in range(repeats):  # alternating, so a drift in machine speed hits both alike
        ref_times.append(reference_loop(generator, discriminator, x, steps, recipe.train.batch_size,
                                        recipe.train.z_dim, device))
        short.append(project_loop(recipe, data, steps))
        long.append(project_loop(recipe, data, 2 * steps))
    step = (min(long) - min(short)) / steps
    return min(ref_times) / steps, step, min(short) - steps * step


def main() -> None:
    parser = argparse.ArgumentParser(description="project training step vs the pytorch/examples DCGAN loop")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", action="append", help="cpu, cuda (default: cpu, and cuda when present)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a train setting for the project's side, e.g. --set precision=bf16")
    args = parser.parse_args()
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    changes = {}
    for item in args.set:
        key, value = item.split("=", 1)
        changes[key] = yaml.safe_load(value)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {args.steps} steps, best of "
          f"{args.repeats}; DCGAN width 64, batch 64, 28x28" + (f"; project: {changes}" if changes else ""))
    print(f"{'device':<8}{'reference ms/step':>20}{'project ms/step':>18}{'ratio':>8}{'project fixed s/run':>22}")
    for device in devices:
        ref, proj, fixed = measure(device, args.steps, args.repeats, **changes)
        print(f"{device:<8}{ref * 1e3:>20.1f}{proj * 1e3:>18.1f}{ref / proj:>8.2f}{fixed:>22.1f}")


if __name__ == "__main__":
    main()
