"""Resolved variants: what each variant actually trains, decided once, in one place.

`load_lab()` reads params.yaml, merges every variant's overrides into the shared recipe and
resolves it: what the recipe leaves to the loss is filled in from the loss's registry entry.
The stages that train or show what trained, the CLI and the tests get their recipes from here;
the stages that only read the sample or eval sections take the merged recipe from `config`.

Names are checked by the registries that own them, where they are used (an unknown loss here,
an unknown architecture when the models are built, an unknown metric when evaluating), and all
of them at once by `check_names`, which the prepare stage runs before anything is computed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from pipeline.config import Params, Recipe, ResolvedRecipe, build, load_params, lookup, parse_params
from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    recipe: ResolvedRecipe          # no `auto` or null left for the loss to decide
    notes: tuple[str, ...]          # what resolution decided beyond the defaults (a dropped shared trick)
    overrides: dict[str, Any]       # the variant's own keys in params.yaml


@dataclass(frozen=True)
class Lab:
    """params.yaml with every variant resolved."""

    params: Params
    variants: dict[str, Variant]

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise ConfigError(f"unknown variant {name!r}; variants in params.yaml: {', '.join(self.variants)}")
        return self.variants[name]

    def datasets(self) -> list[str]:
        """Every dataset some variant trains on, in first-use order."""
        return self.params.datasets()

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.params.seeds

    def recipe(self, name: str, seed: int | None = None) -> ResolvedRecipe:
        """Variant `name`'s resolved recipe at `seed` (default: the first of `seeds`)."""
        return dataclasses.replace(self.variant(name).recipe, seed=self.params.check_seed(seed))

    def runs(self) -> list[tuple[str, int]]:
        """Every (variant, seed) the pipeline trains, variant by variant."""
        return [(name, seed) for name in self.variants for seed in self.seeds]


def load_lab(path: str | Path = "params.yaml", names: bool = True) -> Lab:
    """params.yaml, every variant resolved; `names`: also check every registered name (`check_names`)."""
    return lab_from_params(load_params(path), names)


def lab_from_raw(raw: Mapping[str, Any], names: bool = True) -> Lab:
    return lab_from_params(parse_params(raw), names)


def lab_from_params(params: Params, names: bool = True) -> Lab:
    shared = build(Recipe, params.recipe, "")
    if names:
        check_names(shared, "")  # the shared recipe first: errors name its own keys
    resolve(shared, {})
    variants = {}
    for name, overrides in params.variants.items():
        merged = params.merged(name)
        if names:
            check_names(merged, f"variants.{name}")
        recipe, notes = resolve(merged, overrides, f"variants.{name}")
        variants[name] = Variant(name, recipe, notes, overrides)
    _check_shared_task_keys(shared, {v.recipe.task for v in variants.values()})
    return Lab(params, variants)


def _check_shared_task_keys(shared: Recipe, tasks: set[str]) -> None:
    """A shared key that only one task uses, while no variant has that task, would change nothing: an error."""
    from pipeline.tasks import task_keys, task_names

    for key, (owners, unused) in task_keys().items():
        if tasks & set(owners) or lookup(shared, key) == unused:
            continue
        raise ConfigError(f"{key}: applies to task {task_names(owners)} only, and no variant has task "
                          f"{task_names(owners)} (tasks here: {', '.join(sorted(tasks))}); remove it or add a "
                          f"{owners[0]} variant")


def check_names(recipe: Recipe, where: str = "") -> None:
    """Every name in `recipe` is one its registry knows; the error names the key and the valid names."""
    from pipeline.data.sources import DATASETS
    from pipeline.metrics.registry import METRICS
    from pipeline.models import ARCHITECTURES
    from pipeline.tasks import TASKS

    prefix = f"{where}." if where else ""
    task = TASKS.get(recipe.task, f"{prefix}task")
    DATASETS.get(recipe.dataset, f"{prefix}dataset")
    if task.uses_arch:
        ARCHITECTURES.get(recipe.arch, f"{prefix}arch")
    task.check_names(recipe, prefix)
    for name in recipe.eval.metrics:
        METRICS.get(name, f"{prefix}eval.metrics")
    check_paths(recipe, prefix)


def check_paths(recipe: Recipe, prefix: str = "") -> None:
    """Every file, folder and store a parameter names, checked when params.yaml is read (the resolve stage reads all
    of it, so any `-S` change passes here first), not when a stage hours later opens it."""
    d = recipe.data
    if Path(d.root).exists() and not Path(d.root).is_dir():
        raise ConfigError(f"{prefix}data.root: {d.root} is a file; data.root is the folder datasets are downloaded "
                          f"to and read from (default data/raw): name a folder")
    if "folder" in (recipe.dataset, d.cycle_with):
        if not d.folder:
            raise ConfigError(f"{prefix}data.folder: dataset folder needs data.folder set to a directory of images")
        if not Path(d.folder).is_dir():
            raise ConfigError(f"{prefix}data.folder: {d.folder} does not exist or is not a directory; put your images "
                              f"there (immediate subfolders become classes) or fix the path")
    weights = recipe.eval.inception_weights
    if "inception" in recipe.eval.features and weights and not Path(weights).is_file():
        raise ConfigError(f"{prefix}eval.inception_weights: {weights} is not a file; put torch-fidelity's "
                          f"inception-v3-compat weights there, or leave it null for the standard FID Inception")
    check_tracking_uri(recipe.mlflow.tracking_uri, f"{prefix}mlflow.tracking_uri")


def check_tracking_uri(uri: str | None, key: str = "mlflow.tracking_uri") -> None:
    """No secret in the URI (params.yaml is committed, its values logged), and a local store's folder exists."""
    from urllib.parse import urlsplit

    if not uri:
        return
    parts = urlsplit(uri)
    if parts.password is not None or (parts.username and parts.scheme in ("http", "https")):
        shown = uri.replace(f":{parts.password}@", ":***@") if parts.password is not None else uri
        raise ConfigError(f"{key}: {shown} holds a user name or password, and params.yaml is committed and logged; "
                          f"give the server's address alone and set MLFLOW_TRACKING_USERNAME and "
                          f"MLFLOW_TRACKING_PASSWORD in the environment (a database store: its password in ~/.pgpass "
                          f"or the MLFLOW_TRACKING_URI environment variable)")
    local = {"sqlite": uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None,
             "file": parts.path, "": uri}.get(parts.scheme)
    if local and not Path(local).parent.is_dir():
        raise ConfigError(f"{key}: the folder of {local} does not exist; create {Path(local).parent} or name a store "
                          f"in an existing folder (null: mlflow.db in the project)")


# Tricks that only mean something for some losses: name -> (does the loss use it?, its "off" value).
TRICKS: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "label_smoothing": (lambda loss: loss.smoothing, 0.0),  # a critic has no probability to smooth
    "unroll_steps": (lambda loss: not loss.gradient_penalty, 0),  # a GP through unrolled steps: third derivatives
}


def resolve(recipe: Recipe, own: Mapping[str, Any] | None = None, where: str = "") -> tuple[ResolvedRecipe, tuple[str, ...]]:
    """(the recipe with what it leaves to the loss filled in, notes). Idempotent.

    `train.optimizer: auto` and null `lr_g`, `lr_d`, `betas`, `d_steps`, `d_steps_warmup` and
    `g_noise` take the loss's published values (WGAN: RMSprop 5e-5, 5 critic steps, 100 for the
    first 25 and every 500th G step, fresh noise for G; WGAN-GP: Adam 1e-4, betas (0, 0.9), 5 critic
    steps, fresh noise; the others: Adam 2e-4, betas (0.5, 0.999), 1 step, G reusing the D step's
    fakes), so `-S loss=wgan_gp` trains WGAN-GP as published. A trick the loss has no use for
    (label smoothing for a critic) is an error when the variant sets it itself (`own`: the
    variant's overrides; None: everything was set explicitly) and is switched off with a note
    when it comes from the shared recipe, so one `-S train.label_smoothing=0.1` smooths every
    variant it means something for.
    """
    from pipeline.data.sources import dataset_facts
    from pipeline.losses import LOSSES
    from pipeline.optim import OPTIMIZERS
    from pipeline.tasks import TASKS, task_keys, task_names

    prefix = f"{where}." if where else ""
    task = TASKS.get(recipe.task, f"{prefix}task")
    # A shared `task:` switched this variant (`-S task=semi` turns every variant written for generate into that
    # task): the variant's own settings the task cannot use are dropped with a note, its own loss included
    switched = own is not None and "task" not in own and recipe.task != Recipe.task
    notes: list[str] = []
    if switched and "loss" in own and task.gan_losses is not None and recipe.loss not in task.gan_losses:
        notes.append(f"loss={recipe.loss}: task {recipe.task!r} trains with loss {' or '.join(task.gan_losses)}; "
                     f"this variant trains with {task.gan_losses[0]}")
        recipe = dataclasses.replace(recipe, loss=task.gan_losses[0])
    loss = task.loss(recipe.loss, f"{prefix}loss")
    t = recipe.train
    if t.optimizer != "auto" and t.optimizer not in OPTIMIZERS:
        raise ConfigError(f"{prefix}train.optimizer: unknown optimizer {t.optimizer!r}; "
                          f"valid optimizers: auto, {', '.join(OPTIMIZERS.names())}")
    changes: dict[str, Any] = dict(
        optimizer=(task.default_optimizer or loss.default_optimizer) if t.optimizer == "auto" else t.optimizer,
        lr_g=loss.default_lr if t.lr_g is None else t.lr_g,
        lr_d=loss.default_lr if t.lr_d is None else t.lr_d,
        betas=loss.default_betas if t.betas is None else t.betas,
        d_steps=loss.default_d_steps if t.d_steps is None else t.d_steps,
        d_steps_warmup=loss.default_d_steps_warmup if t.d_steps_warmup is None else t.d_steps_warmup,
        g_noise=loss.default_g_noise if t.g_noise is None else t.g_noise,
    )
    if task.g_objective is not None:  # a task whose G has an objective to choose (not translate's, cycle's)
        changes["g_objective"] = task.g_objective if t.g_objective is None else t.g_objective
    if task.lr_schedule is not None:  # a task whose reference schedules its learning rate (translate, cycle)
        changes["lr_schedule"] = task.lr_schedule if t.lr_schedule is None else t.lr_schedule
    own_train = (own or {}).get("train") or {}
    if t.unroll_steps and changes["g_noise"] != "reuse":
        # Metz et al.'s reference takes G's look-ahead on the batch D just trained on
        if t.g_noise is not None:
            notes.append("train.g_noise=fresh does not apply to an unrolled GAN: G's look-ahead uses the D step's "
                         "batch, as in the reference")
        changes["g_noise"] = "reuse"
    if changes.get("g_objective") == "feature_matching" and t.unroll_steps:
        raise ConfigError(f"{prefix}train.g_objective: feature_matching matches D's features, an unrolled G step "
                          f"(train.unroll_steps {t.unroll_steps}) looks ahead at D's output: choose one")
    if t.updates == "simultaneous":
        plain = dict(d_steps=changes["d_steps"], d_steps_warmup=changes["d_steps_warmup"], g_steps=t.g_steps,
                     unroll_steps=t.unroll_steps)
        if plain != dict(d_steps=1, d_steps_warmup=0, g_steps=1, unroll_steps=0):
            raise ConfigError(f"{prefix}train.updates: simultaneous computes one D and one G gradient at the same "
                              f"weights; it needs d_steps 1, d_steps_warmup 0, g_steps 1 and unroll_steps 0, got "
                              + ", ".join(f"{k} {v}" for k, v in plain.items()))
    for key, (applies, off) in TRICKS.items():
        value = getattr(t, key)
        if value == off or applies(loss):
            continue
        users = ", ".join(n for n in LOSSES.names() if applies(LOSSES.get(n)))
        if own is None or key in own_train:
            raise ConfigError(f"{prefix}train.{key}: applies to losses {users}, not {recipe.loss!r}; "
                              f"remove it or choose one of those losses")
        changes[key] = off
        notes.append(f"train.{key}={value} from the shared recipe does not apply to loss {recipe.loss!r} "
                     f"(only {users}); this variant trains without it")
    fields = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe)}
    # A key of another task is an error where the variant sets it itself, unless the variant's task is a
    # shared `task:` that switched it (their own generate keys are then dropped with a note)
    for key, (owners, unused) in task_keys().items():
        value = lookup(recipe, key)
        if recipe.task in owners or value == unused:
            continue
        if own is None or (lookup(own, key) is not None and not switched):
            raise ConfigError(f"{prefix}{key}: applies to task {task_names(owners)} only, not {recipe.task!r}; "
                              f"remove it or set task: {owners[0]}")
        section, _, name = key.rpartition(".")
        if section:
            fields[section] = dataclasses.replace(fields[section], **{name: unused})
        else:
            fields[name] = unused
        notes.append(f"{key}={value} applies to task {task_names(owners)} only; this {recipe.task} variant trains "
                     f"without it")
    if not task.uses_arch:  # translate, cycle and semi train their own networks, whatever the shared `arch` says
        arch, what = task.own_arch
        if own is not None and own.get("arch", arch) != arch and switched:
            notes.append(f"arch={own['arch']}: task {recipe.task!r} trains {what} ({arch})")
        elif own is not None and own.get("arch", arch) != arch:
            raise ConfigError(f"{prefix}arch: task {recipe.task!r} trains {what} ({arch}); remove arch from this "
                              f"variant")
        fields["arch"] = arch
    fields["train"] = dataclasses.replace(fields["train"], **changes)
    resolved = ResolvedRecipe(**fields)
    task.check(resolved, prefix)
    task.check_fit(resolved, dataset_facts(resolved.dataset, resolved.data, f"{prefix}dataset"), prefix)
    return resolved, tuple(notes)




# What a variant's trained models, tables and checks depend on: every key of its recipe but the seed (in the train
# stage's command), the sample and mlflow sections, and of the eval section the class share of the training-time
# checks. The resolve stage writes this part per variant (`training_recipe`); the train stages depend on that file.
TRAINING_KEYS = ("task", "dataset", "loss", "arch", "conditional", "data", "train", "translate", "cycle", "stack")
TRAINING_EVAL_KEYS = ("class_share",)


def training_recipe(recipe: ResolvedRecipe) -> dict[str, Any]:
    """The part of a resolved recipe that training depends on, as plain values (`TRAINING_KEYS`)."""
    values = recipe.to_dict()
    return {**{k: values[k] for k in TRAINING_KEYS}, "eval": {k: values["eval"][k] for k in TRAINING_EVAL_KEYS}}
