"""Every file a stage reads or writes, in one place (dvc.yaml declares the same paths; a test
checks they agree). What is inside each file: `pipeline.checkpoint`.

The unit of training is a *run*: one variant at one seed, named `<variant>/seed<seed>` (`run_name`).
Everything a run makes sits under that name, so adding a seed adds files and changes none.
"""

from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared")
GENERATED = Path("data/generated")
FIDELITY_CACHE = Path("data/fidelity_cache")
MODELS = Path("models")
CLASSIFIERS = MODELS / "classifier"
REPORTS = Path("reports")
CLASSIFIER_METRICS = REPORTS / "classifier.json"
SUMMARY = REPORTS / "summary.json"  # every metric's mean, sd and 95% interval over seeds, per variant
REPORT_HTML = REPORTS / "index.html"
REPORT_MD = REPORTS / "report.md"
REPORT_FIGURES = REPORTS / "figures"
CURVES = REPORTS / "curves"  # <axis>/<metric>.csv: every run's curve of a metric, for `dvc plots`
RECIPES = REPORTS / "recipes"  # each variant's resolved training recipe: what its train stages depend on
HEADLINE = Path("metrics")  # metrics/<variant>.json: the headline numbers `dvc metrics show` prints, a row each
RUN_STATE = Path(".gan-lab/runs")  # resumable checkpoints: outside DVC outputs, survive a crash
RUN_REFERENCES = Path(".gan-lab/mlflow")  # which MLflow run a run logged to: this workspace's, not a result


def run_name(variant: str, seed: int) -> str:
    """`dcgan/seed0`: one variant trained at one seed."""
    return f"{variant}/seed{seed}"


def recipe_path(variant: str) -> Path:
    """The variant's resolved training recipe (YAML), written by the resolve stage; a train stage depends on
    this file instead of on params.yaml's raw keys, so a shared change that the variant overrides leaves the
    file, and with it the trained model, unchanged."""
    return RECIPES / f"{variant}.yaml"


def headline_path(variant: str) -> Path:
    return HEADLINE / f"{variant}.json"


def prepared_dir(dataset: str) -> Path:
    return PREPARED / dataset


def classifier_path(dataset: str) -> Path:
    return CLASSIFIERS / f"{dataset}.pt"


def model_dir(run: str) -> Path:
    return MODELS / run


GENERATOR_FILE = "generator.pt"            # G's weights and what sampling needs
FULL_CHECKPOINT_FILE = "checkpoint.pt"     # the same plus D's weights


def generator_path(run: str) -> Path:
    return model_dir(run) / GENERATOR_FILE


def full_checkpoint_path(run: str) -> Path:
    return model_dir(run) / FULL_CHECKPOINT_FILE


VARIANT_REPORTS = REPORTS / "variants"  # the report stage depends on this whole folder


def report_dir(run: str) -> Path:
    return VARIANT_REPORTS / run


def train_log_path(run: str) -> Path:
    """Per-step losses, one row every `train.log_every` steps (a dvc plot)."""
    return report_dir(run) / "train_log.csv"


def train_eval_path(run: str) -> Path:
    """Mode-collapse metrics and FID over training, one row every `train.eval_every` steps (a dvc plot)."""
    return report_dir(run) / "train_eval.csv"


def samples_png(run: str) -> Path:
    return report_dir(run) / "samples.png"


def latent_dir(run: str) -> Path:
    """Interpolation strip, class-direction walk and an index.json saying what is there and why."""
    return report_dir(run) / "latent"


def generated_path(run: str) -> Path:
    return GENERATED / f"{run}.pt"


def metrics_path(run: str) -> Path:
    return report_dir(run) / "metrics.json"


def fid_protocol_path(run: str) -> Path:
    """How each FID of the run was measured: features, weights digest, reference split, images a
    side, resize."""
    return report_dir(run) / "fid_protocol.json"


def class_hist_path(run: str) -> Path:
    return report_dir(run) / "class_hist.json"


def training_summary_path(run: str) -> Path:
    """How the run trained on this machine (precision and device actually used, update counts):
    a DVC metrics file, so `dvc exp show` shows what `auto` meant."""
    return report_dir(run) / "training.json"


def resolved_path(run: str) -> Path:
    """The recipe the run trained with, defaults filled in (YAML)."""
    return report_dir(run) / "resolved.yaml"


def run_reference_path(run: str) -> Path:
    """The MLflow run the run logged to (JSON), read by the evaluate and report stages. Not a
    DVC output: a clone that pulls the results from a DVC remote has no such run, and must not
    retrain for want of the pointer."""
    return RUN_REFERENCES / f"{run}.json"


def run_state_path(run: str) -> Path:
    return RUN_STATE / run / "last.pt"


def run_state_reference_path(run: str) -> Path:
    """The MLflow run an unfinished training logs to: a resumed training continues that run."""
    return RUN_STATE / run / "mlflow_run.json"
