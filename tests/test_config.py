"""params.yaml parsing and variant resolution: the shipped file is valid; null settings take the
loss's published values; bad input names the key and the valid choices."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline.config import Recipe, deep_merge, load_params
from conftest import REPO

from pipeline.errors import ConfigError
from pipeline.variants import lab_from_raw, load_lab


def recipes(lab) -> dict[str, Recipe]:
    return {name: v.recipe for name, v in lab.variants.items()}


def test_shipped_params_resolve_every_variant(lab):
    recipes = {name: v.recipe for name, v in lab.variants.items()}
    assert set(recipes) >= {"vanilla", "dcgan", "wgan_gp", "cdcgan"}
    assert recipes["vanilla"].arch == "mlp" and recipes["vanilla"].loss == "minimax"
    assert recipes["wgan_gp"].train.d_steps == 5 and recipes["wgan_gp"].train.betas == (0.0, 0.9)
    assert recipes["cdcgan"].conditional is True
    # untouched keys come from the shared recipe
    assert recipes["wgan_gp"].train.batch_size == recipes["dcgan"].train.batch_size
    assert isinstance(recipes["dcgan"], Recipe)


def test_top_level_loss_changes_every_variant_that_does_not_override_it(params_raw):
    raw = copy.deepcopy(params_raw)
    raw["loss"] = "wgan_gp"
    recipes = {name: v.recipe for name, v in lab_from_raw(raw).variants.items()}
    assert recipes["dcgan"].loss == "wgan_gp" and recipes["cdcgan"].loss == "wgan_gp"
    assert recipes["vanilla"].loss == "minimax"  # its own override wins
    # WGAN-GP as published unless the recipe says otherwise: 5 critic steps, Adam betas (0, 0.9)
    assert recipes["dcgan"].train.d_steps == 5 and recipes["dcgan"].train.betas == (0.0, 0.9)
    assert recipes["vanilla"].train.d_steps == 1 and recipes["vanilla"].train.betas == (0.5, 0.999)
    raw["train"]["d_steps"] = 2
    assert lab_from_raw(raw).variant("dcgan").recipe.train.d_steps == 2


@pytest.mark.parametrize("loss, optimizer, lr, betas, d_steps", [
    ("wgan", "rmsprop", 5e-5, (0.5, 0.999), 5),     # Arjovsky et al. 2017, Algorithm 1
    ("wgan_gp", "adam", 1e-4, (0.0, 0.9), 5),       # Gulrajani et al. 2017, Algorithm 1
    ("ns", "adam", 2e-4, (0.5, 0.999), 1),          # Radford et al. 2016
    ("minimax", "adam", 2e-4, (0.5, 0.999), 1),
    ("hinge", "adam", 2e-4, (0.5, 0.999), 1),
])
def test_null_training_settings_take_the_losss_published_values(params_raw, loss, optimizer, lr, betas, d_steps):
    raw = copy.deepcopy(params_raw)
    raw["loss"] = loss
    t = lab_from_raw(raw).variant("dcgan").recipe.train
    assert (t.optimizer, t.lr_g, t.lr_d, t.betas, t.d_steps) == (optimizer, lr, lr, betas, d_steps)
    raw["train"].update(lr_g=3e-4, optimizer="adam")  # explicit values win
    t = lab_from_raw(raw).variant("dcgan").recipe.train
    assert (t.optimizer, t.lr_g, t.lr_d) == ("adam", 3e-4, lr)


def test_a_shared_trick_that_a_variants_loss_cannot_use_is_dropped_with_a_note(params_raw):
    """`dvc exp run -S train.label_smoothing=0.1` must run: the WGAN-GP variant (a critic, nothing
    to smooth) trains without it and says so; the others are smoothed."""
    raw = copy.deepcopy(params_raw)
    raw["train"]["label_smoothing"] = 0.1
    lab = lab_from_raw(raw)
    recipe, notes = lab.variant("wgan_gp").recipe, lab.variant("wgan_gp").notes
    assert recipe.train.label_smoothing == 0.0
    assert list(notes) == ["train.label_smoothing=0.1 from the shared recipe does not apply to loss 'wgan_gp' "
                     "(only minimax, ns, lsgan); this variant trains without it"]
    assert lab.variant("dcgan").recipe.train.label_smoothing == 0.1 and lab.variant("dcgan").notes == ()
    assert lab.variant("vanilla").recipe.train.label_smoothing == 0.1


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"train": {"steps": 10, "lr_g": 1.0}, "loss": "ns"}, {"train": {"steps": 3}})
    assert merged == {"train": {"steps": 3, "lr_g": 1.0}, "loss": "ns"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.update(los="ns"), "unknown key 'los' in params.yaml; valid keys: seeds, task, dataset, loss"),
        (lambda r: r["train"].update(stepz=3), "unknown key 'train.stepz'; valid keys under train: steps"),
        (lambda r: r["train"].update(steps="many"), "train.steps must be an integer, got 'many'"),
        (lambda r: r["train"].update(betas=[0.5]), "train.betas must be a list of 2 numbers"),
        (lambda r: r.update(conditional="yes"), "conditional must be true or false"),
        (lambda r: r.update(loss="wgangp"), "unknown loss 'wgangp'; valid losses: minimax, ns, lsgan, hinge, wgan, wgan_gp"),
        (lambda r: r.update(dataset="mnist6k"), "unknown dataset 'mnist6k'; valid datasets: mnist5k"),
        (lambda r: r.update(arch="resnet"), "unknown architecture 'resnet'; valid architectures: "),
        (lambda r: r["variants"].update(bad={"arch": "vgg"}), "variants.bad.arch: unknown architecture 'vgg'"),
        (lambda r: r["variants"].update(bad={"train": {"lr": 1}}), "unknown key 'variants.bad.train.lr'"),
        (lambda r: r["train"].update(precision="fp8"), "train.precision: unknown value 'fp8'; valid values: auto, fp32, bf16"),
        (lambda r: r["train"].update(label_smoothing=0.7), "train.label_smoothing must be in [0, 0.5)"),
        (lambda r: r["train"].update(optimizer="sgd"), "train.optimizer: unknown optimizer 'sgd'; valid optimizers: auto, adam, rmsprop"),
        (lambda r: r["eval"].update(metrics=["fid"]), "eval.metrics: unknown metric 'fid'; valid metrics: modes, fidelity, intra_fid, diversity"),
        (lambda r: r["eval"].update(metrics="fidelity"), "eval.metrics must be a list, got 'fidelity'"),
        (lambda r: r["train"].update(lr_d=-1.0), "train.lr_d must be > 0, got -1.0"),
        (lambda r: r["train"].update(unroll_steps=-1), "train.unroll_steps must be >= 0"),
        (lambda r: r["variants"]["wgan_gp"]["train"].update(label_smoothing=0.1),
         "variants.wgan_gp.train.label_smoothing: applies to losses minimax, ns, lsgan, not 'wgan_gp'"),
        (lambda r: r["variants"].update(unrolled={"loss": "wgan_gp", "train": {"unroll_steps": 3}}),
         "variants.unrolled.train.unroll_steps: applies to losses minimax, ns, lsgan, hinge, wgan, not 'wgan_gp'"),
        (lambda r: r.update(variants={}), "variants: must map at least one variant name"),
        (lambda r: r["eval"].update(features="inception"), "eval.features must be a list, got 'inception'"),
        (lambda r: r.update(seed=3), "seed: params.yaml takes a list of seeds now, seeds: [3]"),
        (lambda r: r.update(seeds=4), "seeds must be a non-empty list of integers, e.g. [0, 1, 2]; got 4"),
        (lambda r: r.update(seeds=[]), "seeds must be a non-empty list of integers"),
        (lambda r: r.update(seeds=[0, 1, 1]), "seeds must not repeat; got [0, 1, 1]"),
        (lambda r: r.update(seeds=[0, -1]), "seeds must be non-negative integers; got -1 in [0, -1]"),
        (lambda r: r["variants"]["dcgan"].update(seeds=[5]),
         "variants.dcgan: seeds are set once for every variant (seeds: at the top of params.yaml)"),
        (lambda r: r["eval"].update(features=["clip"]),
         "eval.features[0]: unknown value 'clip'; valid values: classifier, inception"),
        (lambda r: r["eval"].update(reference="valid"), "eval.reference: unknown value 'valid'; valid values: train, test"),
        (lambda r: r["train"].update(z_dist="cauchy"), "train.z_dist: unknown value 'cauchy'; valid values: normal, uniform"),
        (lambda r: r["train"].update(updates="together"),
         "train.updates: unknown value 'together'; valid values: alternating, simultaneous"),
        (lambda r: r["train"].update(g_steps=0), "train.g_steps must be >= 1, got 0"),
        (lambda r: r["sample"].update(latent_samples=0), "sample.latent_samples must be >= 1, got 0"),
        (lambda r: r["sample"].update(projection_steps=0), "sample.projection_steps must be >= 1, got 0"),
        (lambda r: r["train"].update(batch_size=9, pac=2, nproc=2),
         "train.batch_size 9 must be divisible by train.nproc 2"),
        (lambda r: r["train"].update(d_steps_warmup=-1), "train.d_steps_warmup must be >= 0 (0: off), got -1"),
        (lambda r: r["train"].update(updates="simultaneous", g_steps=2),
         "train.updates: simultaneous computes one D and one G gradient at the same weights; it needs d_steps 1, "
         "d_steps_warmup 0, g_steps 1 and unroll_steps 0, got d_steps 1, d_steps_warmup 0, g_steps 2"),
    ],
)
def test_bad_params_are_clear_errors(params_raw, mutate, message):
    raw = copy.deepcopy(params_raw)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        lab_from_raw(raw)
    assert message in str(err.value)


def test_unknown_variant_lists_the_variants(lab):
    with pytest.raises(ConfigError, match="unknown variant 'nope'; variants in params.yaml: vanilla, dcgan"):
        lab.variant("nope")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_training_hash_ignores_logging_but_not_learning_rate(lab):
    import dataclasses

    r = lab.variant("dcgan").recipe
    more_logging = dataclasses.replace(r, train=dataclasses.replace(r.train, log_every=1, device="cpu"))
    other_lr = dataclasses.replace(r, train=dataclasses.replace(r.train, lr_g=1e-3))
    assert r.training_hash() == more_logging.training_hash()
    assert r.training_hash() != other_lr.training_hash()


def test_exponent_floats_as_dvc_writes_them(tmp_path, params_raw):
    """`dvc exp run -S train.lr_g=5e-5` writes `lr_g: 5e-05`: a number, not a string."""
    import yaml

    text = yaml.safe_dump(params_raw, sort_keys=False).replace("lr_g: null", "lr_g: 5e-05")
    (tmp_path / "params.yaml").write_text(text)
    assert load_lab(tmp_path / "params.yaml").variant("dcgan").recipe.train.lr_g == 5e-05


def test_params_yaml_names_every_key(params_raw):
    """`dvc exp run -S a.b=v` can only set keys params.yaml already has (Hydra's struct mode), so the
    shipped file lists every recipe and stage key."""
    import dataclasses

    from pipeline import config

    sections = {"data": config.DataConfig, "train": config.TrainConfig, "sample": config.SampleConfig,
                "eval": config.EvalConfig, "mlflow": config.MlflowConfig, **config.STAGE_SECTIONS}
    absent = [name for name in ("seeds", *config.RECIPE_KEYS) if name not in params_raw]
    for section, cls in sections.items():
        absent += [f"{section}.{f.name}" for f in dataclasses.fields(cls) if f.name not in params_raw[section]]
    assert absent == []


def test_config_is_the_ground_floor():
    """config imports nothing of the package but its errors; names are checked where registered."""
    import ast

    from conftest import REPO

    tree = ast.parse((REPO / "pipeline/config.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert {m for m in imported if m.startswith("pipeline")} == {"pipeline.errors"}


def test_names_are_checked_all_at_once_or_where_used(params_raw):
    """load_lab checks every name up front (the resolve stage); a stage that skips that (names=False) still gets the
    registry's own error when the variant is resolved (its networks are built on the meta device to check that they
    fit the data), and where it uses the name."""
    import copy

    from pipeline.models import build_models

    raw = copy.deepcopy(params_raw)
    raw["variants"]["odd"] = {"arch": "unet"}
    for names in (True, False):
        with pytest.raises(ConfigError, match="^variants.odd.arch: unknown architecture 'unet'; valid architectures: "
                                              "dcgan"):
            lab_from_raw(raw, names=names)
    with pytest.raises(ConfigError, match="arch: unknown architecture 'unet'; valid architectures: dcgan"):
        build_models("unet", None)


def test_a_variant_is_resolved_once():
    """Resolution is idempotent: resolving a resolved recipe changes nothing (train() accepts only those)."""
    from conftest import raw_recipe

    from pipeline.config import is_resolved
    from pipeline.variants import resolve

    raw = raw_recipe(loss="wgan_gp")
    assert not is_resolved(raw)
    once, _ = resolve(raw)
    assert is_resolved(once) and resolve(once)[0] == once


def test_each_seed_is_a_run_of_the_same_resolved_recipe(params_raw):
    raw = copy.deepcopy(params_raw)
    raw["seeds"] = [3, 7]
    lab = lab_from_raw(raw)
    assert lab.runs()[:2] == [("vanilla", 3), ("vanilla", 7)] and len(lab.runs()) == 2 * len(lab.variants)
    a, b = lab.recipe("dcgan", 3), lab.recipe("dcgan", 7)
    assert (a.seed, b.seed) == (3, 7) and a.train == b.train and lab.recipe("dcgan").seed == 3
    assert a.training_hash() != b.training_hash()  # a checkpoint of one seed never resumes another
    with pytest.raises(ConfigError, match=r"seed 5 is not in seeds: \[3, 7\]"):
        lab.recipe("dcgan", 5)


def valid_names_header() -> str:
    """The "Valid names" lines of params.yaml's header, from the registries themselves."""
    from pipeline.data.sources import DATASETS
    from pipeline.losses import LOSSES
    from pipeline.metrics.registry import METRICS
    from pipeline.models import ARCHITECTURES
    from pipeline.optim import OPTIMIZERS
    from pipeline.tasks import TASKS
    from pipeline.tasks.translate.problems import PROBLEMS

    rows = [("task", TASKS.names()), ("dataset", DATASETS.names()), ("loss", LOSSES.names()),
            ("arch", ARCHITECTURES.names()), ("optimizer", ["auto", *OPTIMIZERS.names()]), ("metrics", METRICS.names()),
            ("problem", PROBLEMS.names())]
    lines = [f"#              {key:<9} {' | '.join(names)}" for key, names in rows]
    return "# Valid names: " + lines[0][len("#              "):] + "\n" + "\n".join(lines[1:]) + "\n"


def test_params_yaml_header_lists_every_registered_name():
    """A registered task, dataset, loss, architecture, optimizer, metric or translation problem is documented where users look
    first; the failure message is the block to paste."""
    header = valid_names_header()
    assert header in (REPO / "params.yaml").read_text(), "params.yaml's header should read:\n" + header


_ABOVE_DATA = ("pipeline.checkpoint", "pipeline.report", "pipeline.evaluation", "pipeline.training", "pipeline.tasks",
               "pipeline.figures", "pipeline.variants", "pipeline.tracking", "pipeline.cli", "pipeline.studies")
FLOORS = {  # every package of pipeline/ and the parts of the package its code may never import (type-only imports aside)
    "data": (*_ABOVE_DATA, "pipeline.metrics", "pipeline.kinds", "pipeline.models", "pipeline.paths"),
    "metrics": (*_ABOVE_DATA, "pipeline.paths", "pipeline.kinds", "pipeline.models"),
    "kinds": (*_ABOVE_DATA, "pipeline.paths", "pipeline.models"),
    "models": (*_ABOVE_DATA, "pipeline.metrics"),
    # the one loop knows no task, network, metric or data: tasks plug into it
    "training": ("pipeline.report", "pipeline.evaluation", "pipeline.tasks", "pipeline.figures", "pipeline.variants",
                 "pipeline.cli", "pipeline.studies", "pipeline.models", "pipeline.metrics", "pipeline.kinds",
                 "pipeline.data", "pipeline.losses"),
    "evaluation": ("pipeline.report", "pipeline.training", "pipeline.tasks", "pipeline.figures", "pipeline.variants",
                   "pipeline.tracking", "pipeline.cli", "pipeline.studies"),
    "figures": ("pipeline.checkpoint", "pipeline.report", "pipeline.evaluation", "pipeline.training", "pipeline.tasks",
                "pipeline.variants", "pipeline.tracking", "pipeline.cli", "pipeline.studies"),
    "tasks": ("pipeline.report", "pipeline.cli", "pipeline.studies"),
    "report": ("pipeline.training", "pipeline.cli", "pipeline.studies"),
}


def runtime_imports(tree):
    """The modules a file imports when it runs: function-level imports count too (they hide a dependency, not remove
    it); imports under `if TYPE_CHECKING:` do not."""
    import ast

    type_only = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    hidden = {id(m) for block in type_only for m in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _imports(path: Path) -> set[str]:
    import ast

    return set(runtime_imports(ast.parse(path.read_text())))


def test_the_floors_cover_every_package():
    packages = {p.parent.relative_to(REPO / "pipeline").parts[0] for p in (REPO / "pipeline").glob("*/__init__.py")}
    assert packages == set(FLOORS)


@pytest.mark.parametrize("folder", sorted(FLOORS))
def test_no_package_imports_upwards(folder):
    """The house has floors: data loads no metric or network, measuring imports no storage, kind or report code, the
    kinds no report code, the models no metric, the loop no task, the tasks no report."""
    upward = {f"{path.relative_to(REPO).as_posix()}: {module}" for path in (REPO / "pipeline" / folder).rglob("*.py")
              for module in _imports(path) if any(module == f or module.startswith(f + ".") for f in FLOORS[folder])}
    assert upward == set()


def test_the_library_never_reaches_up_into_the_stages_and_a_task_never_into_another():
    """pipeline/ never imports stages/ (the DVC glue sits on top); a task's package imports the contract
    (pipeline.tasks.base) and its own modules, never the registry or another task (shared code lives below them)."""
    found = set()
    for path in (REPO / "pipeline").rglob("*.py"):
        rel = path.relative_to(REPO / "pipeline").parts
        for module in _imports(path):
            if module == "stages" or module.startswith("stages."):
                found.add(f"{'/'.join(rel)}: {module}")
            if rel[0] == "tasks" and len(rel) > 2 and module.startswith("pipeline.tasks"):
                allowed = ("pipeline.tasks.base", f"pipeline.tasks.{rel[1]}")
                if not any(module == a or module.startswith(a + ".") for a in allowed):
                    found.add(f"{'/'.join(rel)}: {module}")
    assert found == set()


def test_a_resolved_recipe_is_its_own_type_and_the_machine_is_resolved_once(images, monkeypatch):
    import dataclasses

    from conftest import raw_recipe
    from pipeline.tasks import train
    from pipeline.config import ResolvedRecipe, is_resolved
    from pipeline.device import for_this_machine
    from pipeline.variants import resolve

    raw = raw_recipe()
    assert not is_resolved(raw)
    with pytest.raises(ValueError, match="train\\(\\) needs a resolved recipe"):
        train(raw, images, progress=False)
    resolved, _ = resolve(raw)
    assert type(resolved) is ResolvedRecipe and is_resolved(dataclasses.replace(resolved, seed=3))
    auto = dataclasses.replace(resolved, train=dataclasses.replace(resolved.train, device="auto", precision="auto"))
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU, whatever this one has
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    here = for_this_machine(auto)
    assert (here.train.device, here.train.precision) == ("cpu", "fp32") and type(here) is ResolvedRecipe
    assert for_this_machine(here) == here
    assert here.training_hash() == for_this_machine(here).training_hash()
