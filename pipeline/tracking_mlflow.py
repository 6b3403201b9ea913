"""MLflow tracking: one run per trained variant and seed (tagged `variant` and `seed`, so the UI
groups and charts runs by variant), grouped under a parent run per `dvc repro` / `dvc exp run`.

Where runs go: `MLFLOW_TRACKING_URI`, else `mlflow.tracking_uri` in params.yaml, else a SQLite
store `mlflow.db` at the repository root. A DVC experiment run in a temporary workspace
(`dvc exp run --temp`, queued runs) lives in `<root>/.dvc/tmp/exps/...` and is deleted afterwards,
so the default store and artifact folder are resolved to the *main* repository root.

Logging never blocks the training loop: the train stage's tracker is a `BackgroundTracker`, so
opening the run, each metric batch (one call per `log_every` steps), the sample grids and the
model are written by a worker thread while training goes on; the run ends once all of it is in.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import torch.nn as nn
from torch import Tensor

from pipeline import paths
from pipeline.config import MlflowConfig, flatten
from pipeline.errors import GanLabError
from pipeline.tracking import BackgroundTracker

if TYPE_CHECKING:
    import numpy as np

    from pipeline.models import ModelSpec

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
PIPELINE_KEY_TAG = "gan_lab.pipeline_key"
VARIANT_TAG = "variant"
SEED_TAG = "seed"
STILL_IMPROVING_TAG = "still_improving"  # FID fell by more than 10% over the last quarter of training
DISABLE_ENV = "GAN_LAB_TRACKING"  # set to "off" to train without MLflow (explicit opt-in)


class TrackingUnavailable(GanLabError):
    """The tracking server cannot be reached: stop before any compute is spent unlogged."""


def repo_root(cwd: Path | None = None) -> Path:
    """The main repository root, also from inside a DVC temporary experiment workspace."""
    cwd = (cwd or Path.cwd()).resolve()
    head, sep, _ = cwd.as_posix().partition("/.dvc/tmp/exps/")
    return Path(head) if sep else cwd


def tracking_enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "on").lower() not in ("off", "0", "false", "no")


def resolve_tracking_uri(cfg: MlflowConfig, root: Path | None = None) -> str:
    root = root or repo_root()
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri or f"sqlite:///{root / STORE_FILE}"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast (seconds, not hours later) when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).read()
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingUnavailable(
            f"the MLflow tracking server at {uri} is unreachable ({exc}). Start it, fix MLFLOW_TRACKING_URI "
            f"or mlflow.tracking_uri in params.yaml, or set {DISABLE_ENV}=off to train without tracking."
        ) from None
    # /health answers anyone; a team server with users (mlflow server --app-name basic-auth) refuses the API to a
    # request without the right user and password: say so now, not from the logging thread after training
    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        urllib.request.urlopen(request, timeout=timeout_s).read()
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            return  # anything else is the server's to say when a run is logged
        who = (f"refused user {user!r} (wrong password, or no such user: ask the server's admin)" if user and password
               else "asks for a user and password")
        raise TrackingUnavailable(
            f"the MLflow tracking server at {uri} {who}; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
            f"in the environment (never in params.yaml, which is committed), or set {DISABLE_ENV}=off to train "
            f"without tracking."
        ) from None
    except (urllib.error.URLError, OSError):
        return


EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3 opens its training-runs view
# A view of the runs page saved in the experiment (MLflow's shared views: the tag `mlflow.sharedViewState.<key>`, opened
# by `?viewStateShareKey=<key>`): the runs grouped by their variant tag (a row per seed under each, each group's mean
# over its seeds in the charts), with the headline numbers as columns. (MLflow nests a build's runs under its parent
# run, collapsed, on the plain runs page.)
GROUPED_VIEW = "by-variant"
GROUPED_VIEW_STATE = {
    "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": VARIANT_TAG}]},
    "useGroupedValuesInCharts": True,
    "selectedColumns": [f"metrics.`eval/{m}`" for m in ("fid_classifier", "precision_classifier", "recall_classifier",
                                                         "coverage_classifier", "classes_covered", "modes_captured")]
                       + ["params.`loss`", "params.`arch`", "params.`train.steps`", f"tags.`{SEED_TAG}`"],
}


def experiment_id(client, name: str, root: Path) -> str:
    """The experiment's id, created if needed, tagged as model training (MLflow 3's UI otherwise opens on its GenAI
    overview: traces and tokens, all empty here) and holding the view grouped by variant."""
    import json

    tags = {EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1],
            f"mlflow.sharedViewState.{GROUPED_VIEW}": json.dumps(GROUPED_VIEW_STATE)}
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        for key, value in tags.items():
            if exp.tags.get(key) is None:
                client.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    if client.tracking_uri.startswith(("http://", "https://")):
        return client.create_experiment(name, tags=tags)  # the server decides where artifacts live
    # a local store gets an explicit artifact root: MLflow's default (./mlruns of the current
    # directory) would land inside a temporary DVC workspace and vanish with it
    return client.create_experiment(name, artifact_location=(root / ARTIFACT_DIR).as_uri(), tags=tags)


def runs_url(server: str, exp_id: str, view: str | None = GROUPED_VIEW, charts: bool = False) -> str:
    """The MLflow UI's page of the experiment's training runs, in a saved `view` (None: as MLflow shows them), as a
    table or as `charts`."""
    url = f"{server.rstrip('/')}/#/experiments/{exp_id}/runs?workflowType=machine_learning"
    return url + (f"&viewStateShareKey={view}" if view else "") + ("&compareRunsMode=CHART" if charts else "")


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pipeline_key(params_text: str, commit: str) -> tuple[str, str]:
    """(key, display name) of the parent run: the DVC experiment's name when DVC sets one, else
    the commit plus a digest of params.yaml (one `dvc repro` of one configuration)."""
    exp_name = os.environ.get("DVC_EXP_NAME")
    if exp_name:
        return f"exp:{exp_name}", exp_name
    digest = hashlib.sha256(f"{commit}\n{params_text}".encode()).hexdigest()[:12]
    return f"repro:{digest}", f"repro {commit[:7]} {digest[:6]}"


def parent_run(client, exp_id: str, key: str, name: str, tags: Mapping[str, str]) -> str:
    """The parent run for this pipeline run: reused if it exists, created otherwise."""
    found = client.search_runs([exp_id], filter_string=f"tags.`{PIPELINE_KEY_TAG}` = '{key}'",
                               max_results=1, order_by=["attributes.start_time DESC"])
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(exp_id, run_name=name, tags={PIPELINE_KEY_TAG: key, **tags})
    return run.info.run_id


class MlflowTracker:
    """The Tracker protocol on one MLflow run."""

    def __init__(self, client, run_id: str, parent_id: str | None = None) -> None:
        self.client, self.run_id, self.parent_id = client, run_id, parent_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit for params
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_image(self, image: Tensor, name: str, step: int) -> None:
        array = image.permute(1, 2, 0).numpy()
        self.client.log_image(self.run_id, array.squeeze(-1) if array.shape[-1] == 1 else array, key=name, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def finish(self, status: str = "FINISHED") -> None:
        """End the run: FINISHED, FAILED or KILLED (a failure also ends the parent run)."""
        self.client.set_terminated(self.run_id, status=status)
        if status != "FINISHED" and self.parent_id:
            self.client.set_terminated(self.parent_id, status=status)


@contextmanager
def run_status(tracker: "MlflowTracker | BackgroundTracker | None") -> Iterator[None]:
    """Mark the run FINISHED on success, KILLED on Ctrl-C / SIGTERM, FAILED on any other error."""
    if tracker is None:
        yield
        return
    try:
        yield
    except KeyboardInterrupt:
        tracker.finish("KILLED")
        raise
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish("FINISHED")


@dataclass(frozen=True)
class VariantRun:
    """What the train stage's MLflow run records about a variant trained at one seed."""

    variant: str
    seed: int
    recipe: dict[str, Any]          # the resolved recipe, logged as params
    device: str
    params_text: str                # params.yaml as read: with the commit, it names the parent run
    notes: tuple[str, ...] = ()     # what resolving the recipe changed (tag gan_lab.notes)


def start_variant_run(cfg: MlflowConfig, request: VariantRun, previous: Mapping[str, str] | None = None,
                      resume: bool = False,
                      remember: Callable[[dict[str, str]], None] | None = None) -> BackgroundTracker | None:
    """The variant's run under this pipeline run's parent, tagged and with every param logged,
    opened on a worker thread (`BackgroundTracker`) once a server URI has answered.

    `previous`: the run of an unfinished training of this variant (killed, crashed). With `resume`
    (training continues from its checkpoint) that run is continued, not a second one started;
    otherwise it is marked KILLED. `remember(reference)` is called as soon as the run is open, so a
    later resume can find it. Returns None (and says so) when tracking is switched off with
    GAN_LAB_TRACKING=off."""
    if not tracking_enabled():
        print(f"note: {DISABLE_ENV}=off: training without MLflow tracking")
        return None
    root = repo_root()
    uri = resolve_tracking_uri(cfg, root)
    check_reachable(uri)  # here, not on the worker: an unreachable server stops the stage before training

    def open_run() -> MlflowTracker:
        client = _client(uri)
        tracker = _continue_run(client, previous, uri) if resume else None
        if tracker is None:
            _end_stale_run(client, previous, uri)
            tracker = open_variant_run(client, root, cfg, request)
        if remember is not None:
            remember(run_reference(tracker))
        return tracker

    return BackgroundTracker(open_run)


def start_training_run(recipe: Any, variant: str, params_file: str, notes: tuple[str, ...], run_key: str,
                       resume: bool) -> BackgroundTracker | None:
    """A train stage's run (`start_variant_run`): the resolved recipe as params, an unfinished training's
    run continued when `resume`, and remembered beside the resumable state as soon as it is open."""
    from pipeline import checkpoint

    request = VariantRun(variant, recipe.seed, recipe.to_dict(), recipe.train.device, Path(params_file).read_text(),
                         notes)
    return start_variant_run(recipe.mlflow, request, previous=checkpoint.read_unfinished_run(run_key), resume=resume,
                             remember=lambda ref: checkpoint.write_unfinished_run(run_key, ref))


def log_training_files(tracker: "MlflowTracker | BackgroundTracker", run_key: str, checkpoints: bool = True) -> None:
    """What the train stage wrote, as artifacts: the checkpoints (`checkpoints`) and the tables."""
    files = [(paths.train_log_path(run_key), "tables"), (paths.train_eval_path(run_key), "tables"),
             (paths.resolved_path(run_key), "tables")]
    if checkpoints:
        files = [(paths.generator_path(run_key), "checkpoint"), (paths.full_checkpoint_path(run_key), "checkpoint"), *files]
    for path, folder in files:
        if Path(path).exists():
            tracker.log_artifact(path, folder)


REUSED_TAG = "gan_lab.reused"            # "true": DVC reused this run's training (another build's, a pulled cache)
REUSED_FROM_TAG = "gan_lab.reused_from"  # the run that trained it, where this store has one
EVAL_REUSED_TAG = "gan_lab.eval_reused"  # "true": DVC skipped the evaluate stage (nothing it reads changed), so the
                                         #   evaluation is the one stored in metrics.json before this build


def record_build(cfg: MlflowConfig, params_text: str, runs: list[tuple[str, int]]) -> MlflowTracker | None:
    """Every (variant, seed) of this build has its run under the build's parent run, with its evaluation, whatever DVC
    reran. A run trained in this build gets the evaluation's `eval/<metric>` and files where it lacks them (DVC skips
    the evaluate stage when the samples it reads are unchanged: a fresh clone, a model retrained to the same weights),
    tagged `gan_lab.eval_reused` when that evaluation is older than the run. A run DVC did not train in this build (an
    unchanged variant of `dvc exp run`, a cache pulled from a remote) gets a run of its own, tagged `gan_lab.reused`
    (and `gan_lab.reused_from` the run that trained it), with its recipe, training curves and evaluation read from
    the results on disk. Returns the parent run (None when tracking is off)."""
    if not tracking_enabled():
        return None
    root = repo_root()
    uri = resolve_tracking_uri(cfg, root)
    check_reachable(uri)
    client = _client(uri)
    exp_id = experiment_id(client, cfg.experiment, root)
    commit = git_commit(root)
    key, name = pipeline_key(params_text, commit)
    context = {"git_commit": commit, "dvc_experiment": os.environ.get("DVC_EXP_NAME", "")}
    parent = MlflowTracker(client, parent_run(client, exp_id, key, name, context))
    for variant, seed in runs:
        run_key = paths.run_name(variant, seed)
        if paths.train_log_path(run_key).exists():
            tracker = _build_run(client, exp_id, parent.run_id, uri, variant, seed, run_key, context)
            _attach_evaluation(tracker, run_key)
    return parent


def _build_run(client, exp_id: str, parent_id: str, uri: str, variant: str, seed: int, run_key: str,
               context: Mapping[str, str]) -> MlflowTracker:
    """The run of (variant, seed) in this build: the train stage's when it trained in this build, else the reused run
    made for it (once: the report may run again in the same build)."""
    from pipeline.checkpoint import read_run_reference

    reference = read_run_reference(run_key)
    if reference.get("tracking_uri") == uri and reference.get("parent_id") == parent_id:
        return MlflowTracker(client, reference["run_id"], parent_id)
    found = client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}' and "
                               f"tags.{VARIANT_TAG} = '{variant}' and tags.{SEED_TAG} = '{seed}' and "
                               f"tags.`{REUSED_TAG}` = 'true'", max_results=1)
    if found:
        return MlflowTracker(client, found[0].info.run_id, parent_id)
    reused_from = reference.get("run_id") if reference.get("tracking_uri") == uri else None
    return _reused_run(client, exp_id, parent_id, variant, seed, run_key, context, reused_from)


def _reused_run(client, exp_id: str, parent_id: str, variant: str, seed: int, run_key: str,
                context: Mapping[str, str], reused_from: str | None) -> MlflowTracker:
    """A run for results DVC reused: the recipe they trained with, their training curves and tables, from disk."""
    import yaml

    from pipeline.checkpoint import read_table
    from pipeline.io import read_json
    from pipeline.tracking import TRAIN, TRAIN_EVAL, in_section

    resolved = yaml.safe_load(paths.resolved_path(run_key).read_text()) if paths.resolved_path(run_key).exists() else {}
    recipe = resolved.get("recipe") or {}
    training = read_json(paths.training_summary_path(run_key)) if paths.training_summary_path(run_key).exists() else {}
    tags = {"mlflow.parentRunId": parent_id, VARIANT_TAG: variant, SEED_TAG: str(seed), REUSED_TAG: "true",
            **{k: str(recipe[k]) for k in ("dataset", "loss", "arch", "conditional", "task") if k in recipe},
            **context, "device": str(training.get("device", ""))}
    if reused_from:
        tags[REUSED_FROM_TAG] = reused_from
    if "still_improving" in training:
        tags[STILL_IMPROVING_TAG] = str(training["still_improving"]).lower()
    if resolved.get("notes"):
        tags["gan_lab.notes"] = "; ".join(resolved["notes"])
    run = client.create_run(exp_id, run_name=f"{variant} seed {seed} (reused)", tags=tags)
    tracker = MlflowTracker(client, run.info.run_id, parent_id)
    tracker.log_params(recipe)
    for section, path in ((TRAIN, paths.train_log_path(run_key)), (TRAIN_EVAL, paths.train_eval_path(run_key))):
        for row in read_table(path):
            tracker.log_metrics(in_section(section, row), int(row["step"]))
    log_training_files(tracker, run_key, checkpoints=False)
    client.set_terminated(run.info.run_id, status="FINISHED")
    return tracker


def _attach_evaluation(tracker: MlflowTracker, run_key: str) -> None:
    """metrics.json as `eval/<metric>` at the last training step, and the evaluation's files, where the run lacks them."""
    from pipeline.checkpoint import read_table
    from pipeline.io import read_json
    from pipeline.tracking import EVAL, in_section

    metrics_file = paths.metrics_path(run_key)
    if not metrics_file.exists():
        return
    numbers = {k: v for k, v in in_section(EVAL, read_json(metrics_file)).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    run = tracker.client.get_run(tracker.run_id)
    missing = {k: v for k, v in numbers.items() if run.data.metrics.get(k) != v}
    if not missing:
        return
    rows = read_table(paths.train_log_path(run_key))
    tracker.log_metrics(missing, step=int(rows[-1]["step"]) if rows else 0)
    for path in (metrics_file, paths.class_hist_path(run_key), paths.fid_protocol_path(run_key)):
        if path.exists():
            tracker.log_artifact(path, "evaluation")
    older = metrics_file.stat().st_mtime * 1000 < run.info.start_time
    tracker.set_tags({EVAL_REUSED_TAG: str(older).lower()})


def _continue_run(client, previous: Mapping[str, str] | None, uri: str) -> MlflowTracker | None:
    if not previous or previous.get("tracking_uri") != uri:
        return None
    try:
        client.update_run(previous["run_id"], status="RUNNING")
    except Exception:  # deleted meanwhile, or another store: start a new run
        return None
    print(f"continuing MLflow run {previous['run_id']}")
    return MlflowTracker(client, previous["run_id"], previous.get("parent_id") or None)


def _end_stale_run(client, previous: Mapping[str, str] | None, uri: str) -> None:
    """A run left RUNNING by a killed training that will not be resumed is marked KILLED."""
    if not previous or previous.get("tracking_uri") != uri:
        return
    try:
        if client.get_run(previous["run_id"]).info.status == "RUNNING":
            client.set_terminated(previous["run_id"], status="KILLED")
    except Exception:
        pass  # gone already: nothing to end


def open_variant_run(client, root: Path, cfg: MlflowConfig, request: VariantRun) -> MlflowTracker:
    exp_id = experiment_id(client, cfg.experiment, root)
    commit = git_commit(root)
    key, name = pipeline_key(request.params_text, commit)
    dvc_exp = os.environ.get("DVC_EXP_NAME", "")
    parent_id = parent_run(client, exp_id, key, name, {"git_commit": commit, "dvc_experiment": dvc_exp})
    recipe = request.recipe
    tags = {"mlflow.parentRunId": parent_id, VARIANT_TAG: request.variant, SEED_TAG: str(request.seed),
            "dataset": recipe["dataset"],
            "loss": recipe["loss"], "arch": recipe["arch"], "conditional": str(recipe["conditional"]),
            "git_commit": commit, "dvc_experiment": dvc_exp, "device": request.device}
    if request.notes:
        tags["gan_lab.notes"] = "; ".join(request.notes)
    run = client.create_run(exp_id, run_name=f"{request.variant} seed {request.seed}", tags=tags)
    tracker = MlflowTracker(client, run.info.run_id, parent_id)
    tracker.log_params(recipe)
    return tracker


def run_reference(tracker: "MlflowTracker | BackgroundTracker | None") -> dict[str, str]:
    """What later stages need to find the run again (a side file beside the variant's results)."""
    if isinstance(tracker, BackgroundTracker):
        tracker = tracker.tracker()
    if tracker is None:
        return {}
    return {"tracking_uri": tracker.client.tracking_uri, "run_id": tracker.run_id, "parent_id": tracker.parent_id or ""}


class ServingGenerator(nn.Module):
    """The generator as an MLflow model: input rows are z (z_dim floats), plus the class label as
    one more column for conditional models; output is images in [-1, 1], N x C x H x W."""

    def __init__(self, generator: nn.Module, z_dim: int, num_classes: int) -> None:
        super().__init__()
        self.generator, self.z_dim, self.num_classes = generator, z_dim, num_classes

    def forward(self, inputs: Tensor) -> Tensor:
        z = inputs[:, : self.z_dim].float()
        y = inputs[:, self.z_dim].round().long() if self.num_classes else None
        return self.generator(z, y)


def log_generator_model(tracker: MlflowTracker, generator: nn.Module, spec: "ModelSpec") -> None:
    """`mlflow.pytorch.log_model` with a signature and an input example, loadable with
    `mlflow.pyfunc.load_model(uri).predict(z)`; the package code travels with the model."""
    import numpy as np

    z_dim, num_classes = spec.z_dim, spec.num_classes
    serving = ServingGenerator(copy.deepcopy(generator).cpu().eval(), z_dim, num_classes)
    example = np.random.default_rng(0).standard_normal((2, z_dim)).astype(np.float32)
    if num_classes:
        example = np.concatenate([example, np.array([[0.0], [1.0]], dtype=np.float32)], axis=1)
    _log_model(tracker, serving, example, "generator")


def log_translator_model(tracker: MlflowTracker, generator: nn.Module, data_shape: tuple[int, ...]) -> None:
    """The translator as an MLflow model: `predict(images)`, images N x C x H x W float32 in [-1, 1] (the
    degraded inputs), returns the translated images, same shape."""
    import numpy as np

    example = np.random.default_rng(0).uniform(-1, 1, (2, *data_shape)).astype(np.float32)
    _log_model(tracker, copy.deepcopy(generator).cpu().eval(), example, "translator")


def log_classifier_model(tracker: MlflowTracker, classifier: nn.Module, data_shape: tuple[int, ...]) -> None:
    """A semi-supervised GAN's D as an MLflow model: `predict(images)`, images N x C x H x W float32 in
    [-1, 1], returns the class logits (N x K)."""
    import numpy as np

    example = np.random.default_rng(0).uniform(-1, 1, (2, *data_shape)).astype(np.float32)
    _log_model(tracker, copy.deepcopy(classifier).cpu().eval(), example, "classifier")


def _log_model(tracker: MlflowTracker, module: nn.Module, example: "np.ndarray", name: str) -> None:
    import mlflow
    import torch
    from mlflow.models import infer_signature
    from torch.nn.utils import parametrize

    for m in list(module.modules()):  # weight norm, spectral norm: folded into plain weights before the export
        if parametrize.is_parametrized(m):
            for tensor in list(m.parametrizations):
                parametrize.remove_parametrizations(m, tensor, leave_parametrized=True)

    with torch.no_grad():
        output = module(torch.from_numpy(example)).numpy()
    mlflow.set_tracking_uri(tracker.client.tracking_uri)
    with mlflow.start_run(run_id=tracker.run_id):
        # pt2: the graph torch.export traces from the example (any batch size), no pickled Python objects and no
        # package code in the model; the signature says what goes in and comes out
        mlflow.pytorch.log_model(module, name=name, signature=infer_signature(example, output),
                                 input_example=example, pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                                 serialization_format="pt2")


def latest_runs_table(uri: str, experiment: str, columns: list[tuple[str, str]]):
    """A DataFrame: one row per variant, each (column, metric) of `columns` as the metric's mean ± sd over the seeds of
    the variant's latest finished runs (the newest run of each (variant, seed)); a column named twice shows the first
    metric the runs have. Also how many seeds, and how many of them were still improving when training stopped or were
    reused from another build."""
    import pandas as pd

    from pipeline.stats import summarize

    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=5000)
    latest: dict[str, dict[str, Any]] = {}  # variant -> seed -> run
    for r in runs:
        variant = r.data.tags.get(VARIANT_TAG)
        if variant is None:
            continue
        latest.setdefault(variant, {}).setdefault(r.data.tags.get(SEED_TAG, "0"), r)
    rows = []
    for variant, by_seed in latest.items():
        newest = max(by_seed.values(), key=lambda r: r.info.start_time)
        row = {"variant": variant, "seeds": len(by_seed), "loss": newest.data.tags.get("loss"),
               "dataset": newest.data.tags.get("dataset")}
        for column, metric in columns:
            stats = summarize([r.data.metrics[metric] for r in by_seed.values() if metric in r.data.metrics])
            if row.get(column) is None:
                row[column] = _mean_sd(stats)
        improving = sum(r.data.tags.get(STILL_IMPROVING_TAG) == "true" for r in by_seed.values())
        reused = sum(r.data.tags.get(REUSED_TAG) == "true" for r in by_seed.values())
        notes = [f"still improving ({improving} of {len(by_seed)} seeds)" if improving else "",
                 f"reused ({reused} of {len(by_seed)} seeds)" if reused else ""]
        row["note"] = "; ".join(n for n in notes if n)
        rows.append(row)
    if not rows:
        return None
    table = pd.DataFrame(rows)
    return table.replace("", None).dropna(axis=1, how="all").fillna("")


def _mean_sd(stats: Mapping[str, Any]) -> str | None:
    if stats["mean"] is None:
        return None
    return f"{stats['mean']:.4g}" + (f" ± {stats['sd']:.2g}" if stats["sd"] is not None else "")
