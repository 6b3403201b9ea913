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
    from pipeline.config import flatten

    for name, variant in _lab(params_file).variants.items():
        recipe = variant.recipe
        diff = " ".join(f"{k}={v}" for k, v in flatten(variant.overrides).items()) or "(shared recipe)"
        typer.echo(f"{name:<12} {recipe.dataset:<10} {recipe.loss:<8} {recipe.arch:<6} {diff}")


@app.command()
def sample(
    variant: Annotated[str, typer.Argument(help="a trained variant (models/<variant>/seed<s>/generator.pt)")],
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("samples.png"),
    n: Annotated[int, typer.Option(min=1, help="number of images")] = 64,
    nrow: Annotated[int, typer.Option(min=1, help="images per row")] = 8,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    label: Annotated[Optional[int], typer.Option(help="class to draw (conditional variants)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Draw samples from a trained generator into a PNG grid."""
    from pipeline.errors import GanLabError
    from pipeline.images import image_grid, save_png
    from pipeline.sampling import draw_labels, generate

    generator, meta, dev = _load(variant, device, model_seed)
    spec = meta.spec
    try:
        labels = draw_labels(n, spec.num_classes, label)
        images, _ = generate(generator, n, spec.z_dim, spec.num_classes, labels=labels, seed=seed, device=dev)
    except GanLabError as exc:
        _fail(str(exc))
    save_png(image_grid(images, nrow), out)
    typer.echo(f"wrote {n} samples of {variant} to {out}")


MODEL_SEED_HELP = "which training seed's model (default: the first of seeds: in params.yaml)"


@app.command()
def translate(
    variant: Annotated[str, typer.Argument(help="a trained variant of task translate")],
    image: Annotated[Path, typer.Argument(help="an image file (PNG, JPEG, ...); resized to the training images' size")],
    out: Annotated[Path, typer.Option(help="PNG file to write: input | outputs | your image")] = Path("translated.png"),
    outputs: Annotated[int, typer.Option(min=1, help="outputs to draw (G's noise is dropout; a CycleGAN draws one)")] = 3,
    as_input: Annotated[bool, typer.Option(help="translate the image as given, instead of degrading it as the "
                                                "variant's problem does (sr4, inpaint, edges) first")] = False,
    invert: Annotated[bool, typer.Option(help="invert the image first (dark ink on light paper -> the digits' "
                                              "light on dark)")] = False,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Translate an image with a trained translator: task translate (super-resolve, complete or draw it) or
    task cycle (from the first domain to the second)."""
    from pipeline import paths
    from pipeline.device import resolve_device
    from pipeline.errors import GanLabError
    from pipeline.images import save_png
    from pipeline.tasks.translate.problems import PROBLEMS, comparison_grid
    from pipeline.tasks.translate.task import load_translator
    from pipeline.tasks.translate.task import translate as run_translator

    run_key = paths.run_name(variant, _first_seed() if model_seed is None else model_seed)
    path = paths.generator_path(run_key)
    if not path.exists():
        _fail(f"no trained translator at {path}; run `dvc repro train@{run_key.replace('/seed', '-')}` first")
    try:
        generator, header = load_translator(path, resolve_device(device))
        if header["problem"] is None:  # a CycleGAN: the image itself, from domain A to B, deterministic
            as_input, outputs = True, 1
        picture = _read_image(image, header["data_shape"], invert)
        source = picture if as_input else PROBLEMS.get(header["problem"]).degrade(picture)
        result = run_translator(generator, source, outputs, seed)
    except GanLabError as exc:
        _fail(str(exc))
    save_png(comparison_grid(source, result, None if as_input else picture), out)
    typer.echo(f"wrote {variant} ({header['problem'] or 'A to B'}): input | {outputs} output(s)"
               f"{'' if as_input else ' | your image'} -> {out}")


def _read_image(path: Path, shape: list[int], invert: bool):
    """One image as a 1 x C x H x W tensor in [-1, 1], or a clear exit."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except (UnidentifiedImageError, OSError) as exc:
        _fail(f"{path}: not an image file this lab can read ({exc})")
    x = torch.from_numpy(array).reshape(h, w, c).permute(2, 0, 1)[None]
    return (1 - x if invert else x) * 2 - 1


def _load(variant: str, device: str, model_seed: int | None = None):
    """(generator, what its checkpoint says, device) of a trained image variant, or a clear exit."""
    from pipeline import paths
    from pipeline.checkpoint import load_generator
    from pipeline.device import resolve_device
    from pipeline.errors import GanLabError

    if model_seed is None:
        model_seed = _first_seed()
    run_key = paths.run_name(variant, model_seed)
    path = paths.generator_path(run_key)
    if not path.exists():
        _fail(f"no trained generator at {path}; run `dvc repro train@{variant}-{model_seed}` first")
    try:
        dev = resolve_device(device)
    except GanLabError as exc:
        _fail(str(exc))
    generator, meta = load_generator(path, dev)
    if not meta.spec.images:
        _fail(f"{variant} generates 2D points, not images; see reports/variants/{run_key}/samples.png")
    return generator, meta, dev


def _first_seed(params_file: Path = Path("params.yaml")) -> int:
    """The first of `seeds:` in params.yaml (0 when there is no params.yaml here)."""
    from pipeline.config import load_params
    from pipeline.errors import GanLabError

    if not params_file.exists():
        return 0
    try:
        return load_params(params_file).seeds[0]
    except GanLabError as exc:
        _fail(str(exc))


@app.command()
def interpolate(
    variant: Annotated[str, typer.Argument(help="a trained variant")],
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("interpolation.png"),
    mode: Annotated[str, typer.Option(help="spherical | linear")] = "spherical",
    rows: Annotated[int, typer.Option(min=1, help="independent walks")] = 4,
    steps: Annotated[int, typer.Option(min=2, help="images per walk")] = 10,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    label: Annotated[Optional[int], typer.Option(help="class of every row (conditional variants)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Walk between random latent points (slerp or lerp) and save the strip."""
    from pipeline.errors import GanLabError
    from pipeline.images import image_grid, save_png
    from pipeline.latent import interpolation_strip
    from pipeline.sampling import draw_labels

    generator, meta, _ = _load(variant, device, model_seed)
    spec = meta.spec
    try:
        draw_labels(1, spec.num_classes, label)  # validates --label
        strip = interpolation_strip(generator, spec.z_dim, spec.num_classes, rows, steps, mode, seed, label)
    except GanLabError as exc:
        _fail(str(exc))
    save_png(image_grid(strip, steps), out)
    typer.echo(f"wrote {rows} {mode} interpolations of {variant} to {out}")


@app.command()
def direction(
    variant: Annotated[str, typer.Argument(help="a trained unconditional variant")],
    target: Annotated[int, typer.Option(help="class whose classifier logit the walk raises")] = 0,
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("direction.png"),
    rows: Annotated[int, typer.Option(min=1)] = 4,
    steps: Annotated[int, typer.Option(min=2)] = 9,
    strength: Annotated[float, typer.Option(help="how far to walk, in latent norm units")] = 3.0,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Controllable generation without labels: walk z along the classifier's gradient for a class."""
    from pipeline.images import image_grid, save_png
    from pipeline.latent import feature_direction, walk_strip

    generator, meta, dev = _load(variant, device, model_seed)
    spec = meta.spec
    if spec.num_classes:
        _fail(f"{variant} is conditional: use `gan sample {variant} --label {target}` instead")
    classifier = _classifier(meta.dataset, dev)
    _check_classes(meta, {"--target": target})
    d = feature_direction(generator, classifier, spec.z_dim, target, seed=seed)
    save_png(image_grid(walk_strip(generator, spec.z_dim, d, rows, steps, strength, seed), steps), out)
    typer.echo(f"wrote {rows} walks of {variant} towards class {target} to {out}")


@app.command()
def arithmetic(
    variant: Annotated[str, typer.Argument(help="a trained unconditional variant")],
    a: Annotated[int, typer.Option("--a", help="concept A (a class the classifier knows)")] = 7,
    b: Annotated[int, typer.Option("--b", help="concept B, subtracted")] = 1,
    c: Annotated[int, typer.Option("--c", help="concept C, added")] = 4,
    per_concept: Annotated[int, typer.Option(min=1, help="exemplars averaged per concept (the paper: 3)")] = 3,
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("arithmetic.png"),
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Latent vector arithmetic (DCGAN): decode mean z(A) - mean z(B) + mean z(C), where each
    concept's z are those of the samples the classifier is surest show it."""
    from pipeline.errors import GanLabError
    from pipeline.latent import latent_arithmetic
    from pipeline.figures.plots import arithmetic_figure

    generator, meta, dev = _load(variant, device, model_seed)
    spec = meta.spec
    if spec.num_classes:
        _fail(f"{variant} is conditional: the label, not z, carries the class; use an unconditional variant")
    _check_classes(meta, {"--a": a, "--b": b, "--c": c})  # before the samples are drawn, not after
    classifier = _classifier(meta.dataset, dev)
    try:
        result = latent_arithmetic(generator, classifier, spec.z_dim, (a, b, c), per_concept, seed=seed)
    except GanLabError as exc:
        _fail(str(exc))
    names = meta.class_names
    arithmetic_figure(result, names, out)
    read = ", ".join(names[k] for k in result.result_classes.tolist())
    typer.echo(f"wrote {names[a]} - {names[b]} + {names[c]} of {variant} to {out}; the classifier reads: {read}")


@app.command()
def project(
    variant: Annotated[str, typer.Argument(help="a trained image variant of task generate")],
    image: Annotated[Path, typer.Argument(help="an image file (PNG, JPEG, ...); resized to the training images' size")],
    out: Annotated[Path, typer.Option(help="PNG file to write: your image, then G(z) along the optimisation")] =
        Path("projection.png"),
    edit: Annotated[Optional[int], typer.Option(help="then move the projected z towards this class (the "
                                                     "classifier's direction, as `gan direction`)")] = None,
    strength: Annotated[float, typer.Option(help="how far --edit walks, in latent norm units")] = 3.0,
    starts: Annotated[int, typer.Option(min=1, help="random starting points of z (the best is kept)")] = 8,
    steps: Annotated[int, typer.Option(min=1, help="Adam steps on z")] = 300,
    invert: Annotated[bool, typer.Option(help="invert the image first (dark ink on light paper -> the digits' "
                                              "light on dark)")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    model_seed: Annotated[Optional[int], typer.Option(help=MODEL_SEED_HELP)] = None,
) -> None:
    """Project an image into G's latent space (iGAN): the z whose G(z) is closest to it (pixels plus the
    classifier's features), the path there, and with --edit a walk from it towards a class."""
    import torch

    from pipeline.images import image_grid, save_png
    from pipeline.latent import feature_direction, walk_strip
    from pipeline.metrics.classifier import classify
    from pipeline.projection import project as run_projection

    generator, meta, dev = _load(variant, device, model_seed)
    spec = meta.spec
    classifier = _classifier(meta.dataset, dev)
    if edit is not None and spec.num_classes:
        _fail(f"{variant} is conditional: the label, not z, carries the class; use `gan sample {variant} --label "
              f"{edit}` or an unconditional variant")
    if edit is not None:
        _check_classes(meta, {"--edit": edit})
    target = _read_image(image, list(spec.data_shape), invert).to(dev)
    label = classify(classifier, target).to(dev) if spec.num_classes else None  # a conditional G draws that class
    result = run_projection(generator, target, spec.z_dim, classifier=classifier, labels=label, starts=starts,
                            steps=steps, seed=seed)
    rows = [torch.cat([target.cpu(), result.path[:, 0]])]
    if edit is not None:
        direction = feature_direction(generator, classifier, spec.z_dim, edit, seed=seed)
        walk = walk_strip(generator, spec.z_dim, direction, rows=1, steps=len(rows[0]), strength=strength, seed=seed,
                          start=result.z)
        rows.append(walk)
    width = len(rows[0])
    save_png(image_grid(torch.cat(rows), width), out)
    typer.echo(f"wrote the projection of {image} into {variant} (pixel MSE {float(result.pixel_error[0]):.4f}, "
               f"images in [-1, 1]): your image | G(z) over {steps} steps"
               + (f"; second row: walking towards class {meta.class_names[edit]}" if edit is not None else "")
               + f" -> {out}")


def _check_classes(meta, options: dict[str, int]) -> None:
    """Each class option in range for the variant's dataset, or a clear exit naming the option and the classes."""
    names = meta.class_names
    for flag, value in options.items():
        if not 0 <= value < len(names):
            listed = f" ({', '.join(f'{i} {n}' for i, n in enumerate(names))})" if len(names) <= 20 else ""
            _fail(f"{flag} {value} is out of range; valid classes: 0..{len(names) - 1}{listed}, the classes of "
                  f"{meta.variant}'s dataset {meta.dataset}")


def _classifier(dataset: str, device):
    """The classifier stage's model for `dataset` on `device`, or a clear exit."""
    from pipeline import paths
    from pipeline.checkpoint import load_dataset_classifier

    classifier = load_dataset_classifier(dataset, device)
    if classifier is None:
        _fail(f"no classifier for dataset {dataset!r} at {paths.classifier_path(dataset)}; run `dvc repro classifier`")
    return classifier


def _lab(params_file: Path):
    """params.yaml, every variant resolved and every name checked, or a clear exit."""
    from pipeline.errors import GanLabError
    from pipeline.variants import load_lab

    try:
        return load_lab(params_file)
    except GanLabError as exc:
        _fail(str(exc))


def _mlflow_config(params_file: Path):
    """The mlflow: section of params.yaml (as the first variant resolves it)."""
    return next(iter(_lab(params_file).variants.values())).recipe.mlflow


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000,
    host: Annotated[str, typer.Option(help="interface to bind; 127.0.0.1 keeps it private")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="open the training-runs page in a browser")] = False,
    params_file: Annotated[Path, typer.Option(help="params.yaml to read")] = Path("params.yaml"),
) -> None:
    """Open the MLflow UI on this project's tracking store, on the experiment's training runs (Ctrl-C to stop)."""
    import subprocess

    from pipeline.tracking_mlflow import resolve_tracking_uri, runs_url

    cfg = _mlflow_config(params_file)
    uri = resolve_tracking_uri(cfg)
    remote = uri.startswith(("http://", "https://"))
    exp_id = _experiment_id(uri, cfg.experiment)
    server = uri if remote else f"http://{host}:{port}"
    if exp_id:
        typer.echo(f"MLflow UI for {uri}\n  the training runs, grouped by variant: {runs_url(server, exp_id)}\n"
                   f"  their charts (each variant's mean over seeds): {runs_url(server, exp_id, charts=True)}")
    else:
        typer.echo(f"MLflow UI for {uri}: {server} (no experiment {cfg.experiment!r} yet: run `dvc repro` first)")
    page = runs_url(server, exp_id) if exp_id else server
    if remote:  # the team's server serves the UI itself
        if open_browser:
            import webbrowser

            webbrowser.open(page)
        return
    if open_browser:  # once the server answers; the server itself runs in the foreground
        import threading

        threading.Thread(target=_open_when_up, args=(server, page), daemon=True).start()
    raise typer.Exit(subprocess.call([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                                      "--host", host, "--port", str(port)]))


def _experiment_id(uri: str, name: str) -> str | None:
    """The id of experiment `name` in the store at `uri`, or None (no such experiment, or the store cannot say)."""
    from mlflow.tracking import MlflowClient

    try:
        exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    except Exception:  # an unreachable server, a store of another version: the UI says more
        return None
    return exp.experiment_id if exp else None


def _open_when_up(server: str, page: str, timeout_s: float = 60.0) -> None:
    """Open `page` in the default browser once the server at `server` answers."""
    import time
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{server}/health", timeout=2).read()
            webbrowser.open(page)
            return
        except OSError:
            time.sleep(0.5)
    typer.echo(f"the UI did not answer within {timeout_s:.0f} s; open {page} yourself", err=True)


@app.command()
def compare(
    params_file: Annotated[Path, typer.Option(help="params.yaml to read")] = Path("params.yaml"),
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment (default: params.yaml's)")] = None,
) -> None:
    """The latest finished run of every variant, its headline numbers side by side (from MLflow)."""
    from pipeline.report.aggregate import HEADLINE
    from pipeline.tracking import EVAL
    from pipeline.tracking_mlflow import latest_runs_table, resolve_tracking_uri

    cfg = _mlflow_config(params_file)  # params.yaml is read once
    uri = resolve_tracking_uri(cfg)
    name = experiment or cfg.experiment
    # the headline numbers, named as `dvc metrics show` names them (fid: on the classifier's features)
    table = latest_runs_table(uri, name, [(column, f"{EVAL}/{metric}") for column, metric in HEADLINE])
    if table is None:
        _fail(f"no runs in MLflow experiment {name!r} at {uri}; run `dvc repro` first")
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))


@app.command()
def study(
    name: Annotated[Optional[str], typer.Argument(help="a study in studies/ (omit to list them)")] = None,
    queue: Annotated[bool, typer.Option(help="queue it (`dvc exp run --run-all` or `dvc queue start` runs it)")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the dvc command, run nothing")] = False,
    seeds: Annotated[Optional[list[int]], typer.Option("--seeds", help="run these seeds instead of the study's "
                                                       "(repeat: --seeds 0 --seeds 1)")] = None,
    variants: Annotated[Optional[list[str]], typer.Option("--variants", help="run only these of the study's "
                                                          "variants (repeat: --variants gan --variants pacgan4)")] = None,
    params_file: Annotated[Path, typer.Option(help="params.yaml to start from")] = Path("params.yaml"),
) -> None:
    """Run a study (studies/<name>.yaml) as a DVC experiment: its variants replace the default set."""
    import shlex
    import shutil
    import subprocess
    import time

    from pipeline import studies
    from pipeline.config import read_yaml
    from pipeline.errors import GanLabError

    if name is None:
        names = studies.available()
        for item in names:
            first = (studies.STUDIES / f"{item}.yaml").read_text().splitlines()[0].lstrip("# ")
            typer.echo(f"{item:<{max(map(len, names))}}  {first}")
        return
    try:
        spec = studies.load_study(name)
        if seeds:
            spec = {**spec, "seeds": list(seeds)}
        if variants:
            unknown = [v for v in variants if v not in spec["variants"]]
            if unknown:
                _fail(f"--variants {unknown[0]}: not a variant of study {name}; its variants: "
                      f"{', '.join(spec['variants'])}")
            spec = {**spec, "variants": {v: spec["variants"][v] for v in variants}}
        studies.apply_study(read_yaml(params_file.read_text()) or {}, spec)
    except GanLabError as exc:
        _fail(str(exc))
    cmd = ["dvc", "exp", "run", "-n", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"] + (["--queue"] if queue else [])
    for override in studies.overrides(spec):
        cmd += ["-S", override]
    typer.echo(shlex.join(cmd))
    if not dry_run:
        if shutil.which("dvc") is None:
            _fail("dvc is not on PATH: activate the environment the lab is installed in (. .venv/bin/activate) and "
                  "run again")
        raise typer.Exit(subprocess.call(cmd))


results_app = typer.Typer(no_args_is_help=True, help="Measured results kept in results/<study>/ and the "
                                                      "documentation pages written from them.")
app.add_typer(results_app, name="results")


@results_app.command("record")
def results_record(
    name: Annotated[str, typer.Argument(help="the study (studies/<name>.yaml) whose finished runs to record, or "
                                             "default (params.yaml's own variants)")],
    rev: Annotated[Optional[str], typer.Option(help="the DVC experiment (its name or commit; `dvc exp show` lists "
                                                    "them) holding the runs; omit for the working tree")] = None,
    repo: Annotated[Path, typer.Option(help="the clone the study ran in")] = Path("."),
    machine: Annotated[Optional[str], typer.Option(help="the machine it ran on (default: this one's CPU)")] = None,
    load: Annotated[Optional[str], typer.Option(help="what else ran beside it, e.g. 'alone, 2 threads'")] = None,
    wall_time: Annotated[Optional[str], typer.Option(help="how long it took, e.g. '80 minutes for 21 runs'")] = None,
    add: Annotated[bool, typer.Option(help="add these runs to the study's result file (seeds run apart)")] = False,
) -> None:
    """Record a finished study's per-seed metrics in results/<name>/result.json (with the commit, machine and
    study file), ready for `gan results render`."""
    from pipeline import results, studies
    from pipeline.errors import GanLabError

    try:
        if name != results.DEFAULT:
            studies.load_study(name)
        path = results.record(name, results.Source.named(repo, rev), machine_text=machine, load=load,
                              wall_time=wall_time, add=add)
    except GanLabError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {path}; `gan results render` writes its page")


@results_app.command("render")
def results_render(
    check: Annotated[bool, typer.Option(help="write nothing; fail when a page differs from what the files "
                                             "give")] = False,
) -> None:
    """Write docs/results/ (a page a study and the index) from the result files in results/."""
    from pipeline import results
    from pipeline.errors import GanLabError

    try:
        if check:
            problems = results.stale()
            if problems:
                _fail("the results pages are not what results/ gives (run `gan results render`): "
                      + "; ".join(problems))
            typer.echo(f"{len(results.available())} studies' pages match their result files")
            return
        pages = results.render_all()
    except GanLabError as exc:
        _fail(str(exc))
    results.PAGES.mkdir(parents=True, exist_ok=True)
    for path, text in pages.items():
        path.write_text(text)
    for path in results.PAGES.glob("*.md"):  # a page whose result files are gone
        if path not in pages:
            path.unlink()
    typer.echo(f"wrote {len(pages)} pages to {results.PAGES}/")


def main() -> None:  # pragma: no cover - console entry point
    from pipeline.errors import GanLabError

    try:
        app(prog_name="gan")
    except GanLabError as exc:  # bad input anywhere below a command: one line, exit 2, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
