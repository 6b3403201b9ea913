"""`gan`: the command line for people. Heavy imports (torch, mlflow) happen inside commands,
so `gan --help` is instant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="GAN Lab: train, compare and understand GANs. `dvc repro` runs the pipeline; "
                       "these commands inspect and use its results.")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def variants(params_file: Annotated[Path, typer.Option(help="params.yaml to read")] = Path("params.yaml")) -> None:
    """List the variants in params.yaml with what each overrides."""
    from pipeline.config import load_params
    from pipeline.errors import GanLabError
    from pipeline.tracking import flatten

    try:
        params = load_params(params_file)
    except GanLabError as exc:
        _fail(str(exc))
    for name, overrides in params.variants.items():
        recipe = params.variant(name)
        diff = " ".join(f"{k}={v}" for k, v in flatten(overrides).items()) or "(shared recipe)"
        typer.echo(f"{name:<12} {recipe.dataset:<10} {recipe.loss:<8} {recipe.arch:<6} {diff}")


@app.command()
def sample(
    variant: Annotated[str, typer.Argument(help="a trained variant (models/<variant>/generator.pt)")],
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("samples.png"),
    n: Annotated[int, typer.Option(min=1, help="number of images")] = 64,
    nrow: Annotated[int, typer.Option(min=1, help="images per row")] = 8,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    label: Annotated[Optional[int], typer.Option(help="class to draw (conditional variants)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Draw samples from a trained generator into a PNG grid."""
    from pipeline import paths
    from pipeline.errors import GanLabError
    from pipeline.sampling import draw_labels, generate, image_grid, load_generator, save_png
    from pipeline.training import resolve_device

    path = paths.generator_path(variant)
    if not path.exists():
        _fail(f"no trained generator at {path}; run `dvc repro train@{variant}` first")
    try:
        generator, ckpt = load_generator(str(path), resolve_device(device))
        spec = ckpt["spec"]
        labels = draw_labels(n, spec["num_classes"], label)
        images, _ = generate(generator, n, spec["z_dim"], spec["num_classes"], labels=labels, seed=seed,
                             device=resolve_device(device))
    except GanLabError as exc:
        _fail(str(exc))
    if len(spec["data_shape"]) != 3:
        _fail(f"{variant} generates 2D points, not images; see reports/variants/{variant}/samples.png")
    save_png(image_grid(images, nrow), out)
    typer.echo(f"wrote {n} samples of {variant} to {out}")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="gan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
