"""Every file a stage reads or writes, in one place (dvc.yaml declares the same paths; a test
checks they agree). What is inside each file: `pipeline.checkpoint`."""

from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared")
GENERATED = Path("data/generated")
FIDELITY_CACHE = Path("data/fidelity_cache")
MODELS = Path("models")
CLASSIFIERS = MODELS / "classifier"
REPORTS = Path("reports")
CLASSIFIER_METRICS = REPORTS / "classifier.json"
REPORT_HTML = REPORTS / "index.html"
REPORT_MD = REPORTS / "report.md"
REPORT_FIGURES = REPORTS / "figures"
CURVES = REPORTS / "curves"  # long-format (step, metric, value) tables for `dvc plots`
RUN_STATE = Path(".gan-lab/runs")  # resumable checkpoints: outside DVC outputs, survive a crash
RUN_REFERENCES = Path(".gan-lab/mlflow")  # which MLflow run a variant logged to: this workspace's, not a result


def prepared_dir(dataset: str) -> Path:
    return PREPARED / dataset


def classifier_path(dataset: str) -> Path:
    return CLASSIFIERS / f"{dataset}.pt"


def model_dir(variant: str) -> Path:
    return MODELS / variant


GENERATOR_FILE = "generator.pt"            # G's weights and what sampling needs
FULL_CHECKPOINT_FILE = "checkpoint.pt"     # the same plus D's weights


def generator_path(variant: str) -> Path:
    return model_dir(variant) / GENERATOR_FILE


def full_checkpoint_path(variant: str) -> Path:
    return model_dir(variant) / FULL_CHECKPOINT_FILE


VARIANT_REPORTS = REPORTS / "variants"  # the report stage depends on this whole folder


def report_dir(variant: str) -> Path:
    return VARIANT_REPORTS / variant


def train_log_path(variant: str) -> Path:
    """Per-step losses, one row every `train.log_every` steps (a dvc plot)."""
    return report_dir(variant) / "train_log.csv"


def train_eval_path(variant: str) -> Path:
    """Mode-collapse metrics over training, one row every `train.eval_every` steps (a dvc plot)."""
    return report_dir(variant) / "train_eval.csv"


def curves_path(variant: str, kind: str) -> Path:
    """`kind`: losses | modes. One folder for every variant, drawn by the top-level `plots:` of dvc.yaml."""
    return CURVES / f"{variant}_{kind}.csv"


def samples_png(variant: str) -> Path:
    return report_dir(variant) / "samples.png"


def latent_dir(variant: str) -> Path:
    """Interpolation strip, class-direction walk and an index.json saying what is there and why."""
    return report_dir(variant) / "latent"


def generated_path(variant: str) -> Path:
    return GENERATED / f"{variant}.pt"


def metrics_path(variant: str) -> Path:
    return report_dir(variant) / "metrics.json"


def fid_protocol_path(variant: str) -> Path:
    """How each FID of the variant was measured: features, weights digest, reference split, images a
    side, resize."""
    return report_dir(variant) / "fid_protocol.json"


def class_hist_path(variant: str) -> Path:
    return report_dir(variant) / "class_hist.json"


def training_summary_path(variant: str) -> Path:
    """How the variant trained on this machine (precision and device actually used, update counts):
    a DVC metrics file, so `dvc exp show` shows what `auto` meant."""
    return report_dir(variant) / "training.json"


def resolved_path(variant: str) -> Path:
    """The recipe the variant trained with, defaults filled in (YAML)."""
    return report_dir(variant) / "resolved.yaml"


def run_reference_path(variant: str) -> Path:
    """The MLflow run the variant logged to (JSON), read by the evaluate and report stages. Not a
    DVC output: a clone that pulls the results from a DVC remote has no such run, and must not
    retrain for want of the pointer."""
    return RUN_REFERENCES / f"{variant}.json"


def run_state_path(variant: str) -> Path:
    return RUN_STATE / variant / "last.pt"


def run_state_reference_path(variant: str) -> Path:
    """The MLflow run an unfinished training logs to: a resumed training continues that run."""
    return RUN_STATE / variant / "mlflow_run.json"
