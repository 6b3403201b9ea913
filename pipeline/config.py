"""params.yaml -> frozen, typed dataclasses: the ground floor, importing nothing of the package
but its errors.

The top-level keys of params.yaml are the *recipe* shared by every variant, so that
`dvc exp run -S loss=wgan_gp` edits the recipe exactly as typed. `variants:` maps a
variant name to the keys it overrides; `Params.merged(name, seed)` deep-merges them. `seeds:`
lists the seeds every variant trains with (one run per variant and seed). Stage-only sections
(`classifier`, `report`) sit beside the recipe.

This module checks structure, types and value ranges. Names (dataset, loss, arch, optimizer,
metrics) are checked where they are registered, when `pipeline.variants` resolves a recipe.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    root: str = "data/raw"              # where torchvision downloads land
    folder: str | None = None           # dataset: folder -> the user's image folder
    image_size: int | None = None       # resize images to this size (null: native size)
    test_fraction: float = 0.1          # held-out share of the deterministic train/test split
    split_seed: int = 0                 # the split's seed (independent of the training seed)
    stacked_from: str = "mnist5k"       # stacked_mnist's digits: mnist5k (offline) | mnist (the published protocol)
    translate: str | None = None        # task translate: the paired problem, sr4 | inpaint | edges (built from the images)
    cycle_with: str | None = None       # task cycle: the second, unpaired image domain (a dataset name)
    labels_per_class: int | None = None  # task semi: labelled training images per class (stratified, seeded); the rest
                                        #   are used without their labels


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500                   # generator steps
    batch_size: int = 64
    z_dim: int = 64
    width: int = 64                     # base channel / hidden width of G and D
    optimizer: str = "auto"             # auto: the loss's own (RMSprop for wgan, else Adam; task semi: adam_eps_inside)
                                        #   | adam | rmsprop | adam_eps_inside (the epsilon inside the square root)
    lr_g: float | None = None           # null: the loss's published learning rate
    lr_d: float | None = None           # null: the loss's published learning rate
    betas: tuple[float, float] | None = None  # Adam betas (null: the loss's default)
    d_steps: int | None = None          # discriminator steps per generator step, k (null: the loss's default)
    d_steps_warmup: int | None = None   # critic steps for the first 25 G steps and every 500th (WGAN's reference: 100;
                                        #   0: off; null: the loss's default)
    g_steps: int = 1                    # generator updates per iteration, on the same noise (PacGAN's Stacked MNIST: 2)
    updates: str = "alternating"        # alternating: D then G | simultaneous: both gradients at the same (G, D)
    z_dist: str = "normal"              # the generator's prior: normal N(0, I) | uniform U(-1, 1)
    label_smoothing: float = 0.0        # one-sided: real label = 1 - label_smoothing
    gp_weight: float = 10.0
    clip_value: float = 0.01
    pac: int = 1                        # PacGAN: D judges `pac` samples jointly; it sees batch_size packs a step
    unroll_steps: int = 0               # unrolled GAN: G's loss is taken against D after k look-ahead steps
    lr_schedule: str | None = None      # constant | linear_decay (constant for the first half of the steps, then linearly
                                        #   to zero, as pix2pix and CycleGAN train); null: the task's (translate and cycle:
                                        #   linear_decay; the others have no schedule)
    ema: float = 0.0                    # decay of the EMA of G's weights once warmed up (0: off)
    ema_ramp: str = "stylegan2"         # its warm-up: stylegan2 (StyleGAN2-ADA's half-life ramp) | num_updates
                                        #   (TensorFlow's min(decay, (1 + t) / (10 + t)))
    spectral_norm: bool = False
    device: str = "auto"                # auto | cpu | cuda | cuda:N | mps
    precision: str = "fp32"             # auto (bf16 on CUDA GPUs that have it, fp32 elsewhere) | fp32 | bf16 (autocast)
    g_noise: str | None = None          # reuse: the G step judges the D step's fakes | fresh: new noise (null: the loss's)
    compile: bool = False               # torch.compile G and D (pays off over hundreds of steps)
    g_objective: str | None = None      # adversarial: the loss's G term | feature_matching: G matches the mean of D's
                                        #   features on real data (Salimans et al. 2016) | null: the task's (semi: feature
                                        #   matching, generate: adversarial)
    minibatch_discrimination: bool = False  # D's head also sees, per sample, its closeness to the rest of the batch
                                        #   (Salimans et al. 2016's kernel layer on D's features)
    minibatch_std: bool = False         # D's head also sees the batch's standard deviation of its features (progressive
                                        #   GANs, Karras et al. 2018; groups of 4)
    historical_averaging: float = 0.0   # weight of the pull of G's and D's weights towards their running averages
                                        #   (Salimans et al. 2016; 0: off)
    progressive: int = 1                # progressive growing (Karras et al. 2018; arch: progressive): the resolutions
                                        #   G and D grow through, coarsest first (28x28: up to 3, 7 -> 14 -> 28; 1: full
                                        #   size from the start)
    stage_images: int = 16000           # real images D sees at each resolution before the next fades in
    fade_images: int = 16000            # real images over which the next resolution fades in (its weight 0 -> 1)
    nproc: int = 1                      # data-parallel processes (torchrun, DDP); batch_size is the global batch
    log_every: int = 25                 # steps between loss rows (and host syncs)
    eval_every: int = 250               # steps between mode-collapse checks
    eval_samples: int = 1000            # samples generated for each check
    checkpoint_every: int = 500         # steps between resumable checkpoints


@dataclass(frozen=True)
class SampleConfig:
    n: int | None = None                # images written for evaluation (null: dataset protocol)
    grid: int = 8                       # the PNG grid is grid x grid
    interpolation: str = "spherical"    # spherical | linear latent interpolation strip
    direction_class: int = 0            # unconditional models: walk z towards this class (classifier)
    arithmetic: tuple[int, int, int] = (7, 1, 4)  # latent arithmetic A - B + C over these classes
    latent_samples: int = 2000          # samples the latent arithmetic searches for its concepts' exemplars; the
                                        # class direction and its entanglement profile use up to 256 of them
    projection_images: int = 50         # real test images projected into the latent space (iGAN; 0: off)
    projection_starts: int = 2          # random starting points of z for each image (the best one is kept)
    projection_steps: int = 100         # Adam steps on z
    descriptions: tuple[str, ...] = ("a thick, right-slanted, wide seven", "a thin, upright, narrow two")  # task stack:
                                        #   what the sample stage draws many digits of (thickness, slant, width, digit)


@dataclass(frozen=True)
class EvalConfig:
    features: tuple[str, ...] = ("classifier",)  # FID/KID/PR features, any of: classifier | inception
    inception_weights: str | None = None  # null: the standard FID Inception (fetched once); or a local
                                          # torch-fidelity inception-v3-compat weights file
    reference: str = "train"            # the real images FID compares with: train | test (held-out split)
    kid_subset_size: int = 1000
    class_share: float = 0.2            # a class is covered at >= this share of its expected count
    diversity_pairs: int = 1000         # random pairs for the within-set SSIM diversity
    batch_size: int = 256
    metrics: tuple[str, ...] = ("modes", "fidelity", "intra_fid", "diversity", "cas")  # by name: pipeline.metrics


@dataclass(frozen=True)
class TranslateConfig:
    """Task translate (image-to-image, pix2pix): G maps a degraded image back to the image."""

    l1_weight: float = 100.0            # weight of the reconstruction term beside the adversarial loss (pix2pix: 100)
    reconstruction: str = "l1"          # l1 | l2 (mean squared error: the course's blurry baseline)
    dropout: float = 0.5                # the U-Net decoder's dropout, on at training and test time: G's only noise
    outputs_per_input: int = 4          # outputs drawn for each test input (the per-input diversity)


@dataclass(frozen=True)
class CycleConfig:
    """Task cycle (unpaired translation, CycleGAN) between `dataset` (domain A) and `data.cycle_with` (B)."""

    cycle_weight: float = 10.0          # lambda: weight of each cycle-consistency L1 term (CycleGAN: 10)
    identity_weight: float = 5.0        # weight of each identity L1 term, G_AB(b) ~ b (CycleGAN: 0.5 lambda = 5)
    pool_size: int = 50                 # D judges fakes drawn from a pool of this many past ones, half the time (CycleGAN:
                                        #   50; 0: the latest fakes only)


@dataclass(frozen=True)
class StackConfig:
    """Task stack (StackGAN): digits from descriptions of measured attributes, in two stages."""

    stages: int = 2                     # 2: Stage I (14x14) then Stage II (28x28) | 1: the one-stage baseline
    stage1_steps: int | None = None     # steps Stage I trains before Stage II does (null: half of train.steps)
    c_dim: int = 128                    # the conditioning augmentation's code size (StackGAN-Pytorch: 128)
    kl_weight: float = 2.0              # weight of its KL term in G's loss (StackGAN-Pytorch's COEFF.KL: 2)


@dataclass(frozen=True)
class MlflowConfig:
    experiment: str = "gan-lab"
    tracking_uri: str | None = None


@dataclass(frozen=True)
class Recipe:
    """Everything that defines one trained run: a variant at one seed."""

    seed: int = 0                       # from `seeds:`, one run per seed (not a key of params.yaml)
    task: str = "generate"              # generate: images from noise | translate: paired image-to-image (pix2pix)
                                        #   | cycle: unpaired image-to-image (CycleGAN) | semi: a classifier from few
                                        #   labels (semi-supervised GAN) | voxel: 3D shapes (3D-GAN) | stack: digits
                                        #   from descriptions in two stages (StackGAN)
    dataset: str = "mnist5k"
    loss: str = "ns"
    arch: str = "dcgan"
    conditional: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    cycle: CycleConfig = field(default_factory=CycleConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def training_hash(self) -> str:
        """Hash of what determines the trained weights (not sampling/eval/tracking)."""
        d = self.to_dict()
        keep = {k: d[k] for k in ("seed", "task", "dataset", "loss", "arch", "conditional", "data", "train", "translate",
                                  "cycle", "stack")}
        for k in ("log_every", "eval_every", "eval_samples", "checkpoint_every", "device"):
            keep["train"].pop(k)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ResolvedRecipe(Recipe):
    """A recipe with nothing left for the loss to decide (`pipeline.variants.resolve` is the only way to get one, and
    `pipeline.tasks.train` takes nothing else). `pipeline.device.for_this_machine` turns `device: auto` and
    `precision: auto` into what this machine runs, once, before training."""


def is_resolved(recipe: Recipe) -> bool:
    return isinstance(recipe, ResolvedRecipe)


@dataclass(frozen=True)
class ClassifierConfig:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 1.0e-3
    seed: int = 0


@dataclass(frozen=True)
class ReportConfig:
    title: str = "GAN Lab report"
    compare_with: tuple[str, ...] = ()  # published tables to print beside the variants (pipeline/report/published.py)
    reduced: str | None = None          # how these settings differ from the published ones (null: they do not)


RECIPE_KEYS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "seed")
STAGE_SECTIONS = {"classifier": ClassifierConfig, "report": ReportConfig}


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, checked for structure, types and ranges (not yet resolved)."""

    recipe: dict[str, Any]                 # the shared recipe, as written
    variants: dict[str, dict[str, Any]]    # each variant's own overrides, as written
    classifier: ClassifierConfig
    report: ReportConfig
    seeds: tuple[int, ...] = (0,)          # every variant trains once per seed

    def merged(self, name: str, seed: int | None = None) -> Recipe:
        """The shared recipe deep-merged with the overrides of variant `name` (nulls still null), at
        `seed` (default: the first of `seeds`)."""
        if name not in self.variants:
            raise ConfigError(
                f"unknown variant {name!r}; variants in params.yaml: {', '.join(self.variants)}"
            )
        recipe = build(Recipe, deep_merge(self.recipe, self.variants[name]), f"variants.{name}")
        return dataclasses.replace(recipe, seed=self.check_seed(seed))

    def check_seed(self, seed: int | None) -> int:
        if seed is None:
            return self.seeds[0]
        if seed not in self.seeds:
            raise ConfigError(f"seed {seed} is not in seeds: {list(self.seeds)} (params.yaml)")
        return seed

    def datasets(self) -> list[str]:
        """Every dataset some variant trains on (a CycleGAN's second domain included), in first-use order."""
        names = []
        for name in self.variants:
            recipe = self.merged(name)
            names += [recipe.dataset] + ([recipe.data.cycle_with] if recipe.task == "cycle" and recipe.data.cycle_with
                                         else [])
        return list(dict.fromkeys(names))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr_g": 1}} -> {"train.lr_g": 1}: how nested params are logged and shown."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-05` (how DVC writes `-S train.lr_g=5e-5`) as a string; YAML 1.2 and
    people read it as a number. This loader follows YAML 1.2 for floats."""


_Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml. Every variant is resolved once, so a bad one fails early."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found (run from the repository root)")
    try:
        raw = read_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_params(raw)


def parse_params(raw: Mapping[str, Any]) -> Params:
    if not isinstance(raw, Mapping):
        raise ConfigError("params.yaml must be a mapping of keys to values")
    valid = ("seeds", *RECIPE_KEYS, *STAGE_SECTIONS, "variants")
    if "seed" in raw:
        raise ConfigError(f"seed: params.yaml takes a list of seeds now, seeds: [{raw['seed']}] (every variant "
                          f"trains once per seed)")
    unknown = [k for k in raw if k not in valid]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in params.yaml; valid keys: {', '.join(valid)}")
    seeds = _seeds(raw.get("seeds", [0]))
    recipe = {k: raw[k] for k in RECIPE_KEYS if k in raw}
    check_values(build(Recipe, recipe, ""))  # the shared recipe first: errors name its keys
    variants = raw.get("variants") or {}
    if not isinstance(variants, Mapping) or not variants:
        raise ConfigError("variants: must map at least one variant name to its overrides ({} for none)")
    clean_variants: dict[str, dict[str, Any]] = {}
    for name, overrides in variants.items():
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"variants: name {name!r} must be letters, digits, '_' or '-'")
        overrides = overrides or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"variants.{name}: must be a mapping of recipe keys to values")
        if "seed" in overrides or "seeds" in overrides:
            raise ConfigError(f"variants.{name}: seeds are set once for every variant (seeds: at the top of "
                              f"params.yaml), so that variants are compared on the same seeds")
        clean_variants[name] = dict(overrides)
    params = Params(
        recipe=recipe,
        variants=clean_variants,
        classifier=build(ClassifierConfig, raw.get("classifier") or {}, "classifier"),
        report=build(ReportConfig, raw.get("report") or {}, "report"),
        seeds=seeds,
    )
    for name in clean_variants:
        check_values(params.merged(name), f"variants.{name}")
    return params


def _seeds(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"seeds must be a non-empty list of integers, e.g. [0, 1, 2]; got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"seeds must be non-negative integers; got {v!r} in {list(value)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds must not repeat; got {list(value)}")
    return tuple(value)


def check_values(recipe: Recipe, where: str = "") -> None:
    """Values that must be in range or one of a fixed set (registered names are checked elsewhere)."""
    prefix = f"{where}." if where else ""
    t = recipe.train
    choice(t.precision, ("auto", "fp32", "bf16"), f"{prefix}train.precision")
    if t.g_noise is not None:
        choice(t.g_noise, ("fresh", "reuse"), f"{prefix}train.g_noise")
    choice(t.updates, ("alternating", "simultaneous"), f"{prefix}train.updates")
    choice(t.z_dist, ("normal", "uniform"), f"{prefix}train.z_dist")
    if t.g_objective is not None:
        choice(t.g_objective, ("adversarial", "feature_matching"), f"{prefix}train.g_objective")
    if t.historical_averaging < 0:
        raise ConfigError(f"{prefix}train.historical_averaging must be >= 0 (0: off), got {t.historical_averaging}")
    for i, name in enumerate(recipe.eval.features):
        choice(name, ("classifier", "inception"), f"{prefix}eval.features[{i}]")
    choice(recipe.eval.reference, ("train", "test"), f"{prefix}eval.reference")
    choice(recipe.sample.interpolation, ("spherical", "linear"), f"{prefix}sample.interpolation")
    if recipe.sample.projection_images < 0:
        raise ConfigError(f"{prefix}sample.projection_images must be >= 0 (0: off), got {recipe.sample.projection_images}")
    for key in ("projection_starts", "projection_steps", "latent_samples"):
        if getattr(recipe.sample, key) < 1:
            raise ConfigError(f"{prefix}sample.{key} must be >= 1, got {getattr(recipe.sample, key)}")
    choice(recipe.data.stacked_from, ("mnist5k", "mnist"), f"{prefix}data.stacked_from")
    for key in ("steps", "batch_size", "z_dim", "width", "pac", "g_steps", "log_every", "eval_every", "eval_samples",
                "checkpoint_every", "nproc", "progressive", "stage_images"):
        if getattr(t, key) < 1:
            raise ConfigError(f"{prefix}train.{key} must be >= 1, got {getattr(t, key)}")
    if t.batch_size % t.nproc:
        raise ConfigError(f"{prefix}train.batch_size {t.batch_size} must be divisible by train.nproc {t.nproc} "
                          f"(each process trains on batch_size / nproc samples a step)")
    if t.fade_images < 0:
        raise ConfigError(f"{prefix}train.fade_images must be >= 0 (0: a new resolution replaces the last at once), "
                          f"got {t.fade_images}")
    if t.d_steps is not None and t.d_steps < 1:
        raise ConfigError(f"{prefix}train.d_steps must be >= 1, got {t.d_steps}")
    if t.d_steps_warmup is not None and t.d_steps_warmup < 0:
        raise ConfigError(f"{prefix}train.d_steps_warmup must be >= 0 (0: off), got {t.d_steps_warmup}")
    for key in ("lr_g", "lr_d", "gp_weight", "clip_value"):
        value = getattr(t, key)
        if value is not None and not value > 0:
            raise ConfigError(f"{prefix}train.{key} must be > 0, got {value}")
    if t.unroll_steps < 0:
        raise ConfigError(f"{prefix}train.unroll_steps must be >= 0, got {t.unroll_steps}")
    if not 0.0 <= t.label_smoothing < 0.5:
        raise ConfigError(f"{prefix}train.label_smoothing must be in [0, 0.5), got {t.label_smoothing}")
    if not 0.0 <= t.ema < 1.0:
        raise ConfigError(f"{prefix}train.ema must be in [0, 1), got {t.ema}")
    choice(t.ema_ramp, ("stylegan2", "num_updates"), f"{prefix}train.ema_ramp")
    if t.lr_schedule is not None:
        choice(t.lr_schedule, ("constant", "linear_decay"), f"{prefix}train.lr_schedule")
    if not 0.0 < recipe.data.test_fraction < 1.0:
        raise ConfigError(f"{prefix}data.test_fraction must be in (0, 1), got {recipe.data.test_fraction}")


def lookup(obj: Any, dotted: str) -> Any:
    """`lookup(recipe, "train.ema")`; on mappings too (a variant's overrides): None where absent."""
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, Mapping) else getattr(obj, part)
        if obj is None:
            return None
    return obj


def choice(value: str, valid: tuple[str, ...], key: str) -> None:
    """`value` is one of `valid`; else an error naming `key` and the valid values."""
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid values: {', '.join(valid)}")


# ----------------------------------------------------------------------------------------------
# A small typed builder: mapping -> dataclass, with errors that name the key.


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where or 'params.yaml'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown key {key!r}; valid keys{' under ' + where if where else ''}: {', '.join(names)}")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value or {}, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is tuple and typing.get_args(hint)[1:] == (Ellipsis,):  # tuple[str, ...]: a list of any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(_coerce(typing.get_args(hint)[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} numbers, got {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported type {hint} for {key}")


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj
