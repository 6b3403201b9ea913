"""Measured results kept under version control, and the documentation pages written from them.

A study's outcome lives in `results/<study>/`: `result.json` (every variant's per-seed metrics, or for a study whose
per-seed files were not kept its summaries as the run's report printed them; the commit, machine, load and wall
time), `study.yaml` (a copy of the study file when it was recorded: its protocol) and optionally `reading.md` (what the numbers say,
written by a person). `gan results record` writes result.json from a finished study's files (a DVC experiment or
the workspace); `gan results render` writes `docs/results/<study>.md` and the index from those files, and
`gan results render --check` (run by the tests) fails when a page differs from what the files give. Means,
standard deviations, bootstrap intervals and permutation tests are computed here, as the report stage does.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

RESULTS = Path("results")
DEFAULT = "default"  # the default variant set of params.yaml, recorded like a study
PAGES = Path("docs/results")
GENERATED = ("<!-- Written by `gan results render` from results/{name}/: edit those files and render again, "
             "not this page. -->")

# Columns a results table shows when the result file does not name its own: (metric, title), the task's headline
# numbers in the order `dvc metrics show` prints them.
DEFAULT_COLUMNS = {
    "fid_classifier": "FID (classifier) ↓", "fid_inception": "FID (Inception) ↓",
    "precision_classifier": "precision ↑", "recall_classifier": "recall ↑", "coverage_classifier": "coverage ↑",
    "classes_covered": "classes ↑", "modes_captured": "modes ↑", "modes_covered": "modes ↑",
    "high_quality_frac": "high quality ↑", "reverse_kl": "reverse KL ↓", "mode_kl": "mode KL ↓",
    "l1": "L1 ↓", "psnr": "PSNR ↑", "ssim": "SSIM ↑", "sharpness": "sharpness", "accuracy": "class kept ↑",
    "accuracy_ab": "class kept A→B ↑", "fid_classifier_ab": "FID A→B ↓", "cycle_l1_a": "cycle L1 A ↓",
    "accuracy_ba": "class kept B→A ↑", "fid_classifier_ba": "FID B→A ↓", "cycle_l1_b": "cycle L1 B ↓",
    "test_errors": "test errors (averaged D) ↓", "test_errors_raw": "test errors (raw D) ↓",
    "labels_only_errors": "CNN on the labels alone ↓", "all_labels_errors": "CNN on all labels ↓",
    "nearest_real_iou": "nearest-real IoU", "pairwise_iou": "pairwise IoU ↓",
    "class_accuracy": "class ↑", "thickness_accuracy": "thickness ↑", "slant_accuracy": "slant ↑",
    "width_accuracy": "width ↑",
}


def machine() -> str:
    """This machine's CPU model and core count (what a result file records by default)."""
    import os

    name, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in (platform.processor(), platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    vector = ("AVX-512 BF16" if "avx512_bf16" in flags.split() else "AVX-512" if "avx512f" in flags.split()
              else "no AVX-512" if flags else "")
    return ", ".join(x for x in (name, vector, f"{os.cpu_count()} cores") if x)


# ---------------------------------------------------------------------------------------------------- recording


class Source:
    """Files of a finished study: a git revision (a DVC experiment's commit keeps every per-seed metrics.json) or,
    with rev None, the working tree of `repo`."""

    def __init__(self, repo: Path, rev: str | None):
        self.repo, self.rev = repo, rev

    @classmethod
    def named(cls, repo: Path, rev: str | None) -> "Source":
        """The source a user names: a DVC experiment by its name (found under refs/exps), any git revision, or None
        for the working tree; a name that is neither is refused with the clone's experiments listed."""
        if rev is None or rev.startswith("refs/"):
            return cls(repo, rev)
        refs = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname)", "refs/exps"],
                              capture_output=True, text=True).stdout.split()
        named = [r for r in refs if r.rsplit("/", 1)[-1] == rev]
        ref = named[0] if named else rev
        if subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                          capture_output=True, text=True).returncode:
            names = sorted({r.rsplit("/", 1)[-1] for r in refs} - {"EXEC_HEAD", "EXEC_BASELINE", "EXEC_MERGE"})
            raise ConfigError(f"--rev {rev}: no experiment or commit of that name in {repo}; its experiments: "
                              f"{', '.join(names) or 'none (omit --rev to record the working tree)'}")
        return cls(repo, ref)

    def read(self, path: str) -> str | None:
        if self.rev is None:
            file = self.repo / path
            return file.read_text() if file.exists() else None
        done = subprocess.run(["git", "-C", str(self.repo), "show", f"{self.rev}:{path}"], capture_output=True,
                              text=True)
        return done.stdout if done.returncode == 0 else None

    def commit(self) -> str:
        """The lab's commit the runs used: a DVC experiment's baseline (its commit's parent), a commit named by
        --rev, or the working tree's HEAD."""
        rev = "HEAD" if self.rev is None else f"{self.rev}^" if self.rev.startswith("refs/exps/") else self.rev
        done = subprocess.run(["git", "-C", str(self.repo), "rev-parse", "--short=7", rev], capture_output=True,
                              text=True)
        if done.returncode:
            raise ConfigError(f"{self.repo}: no git revision {rev!r} ({done.stderr.strip()})")
        return done.stdout.strip()


def _training_seconds(log: str | None) -> float | None:
    if not log:
        return None
    rows = list(csv.DictReader(io.StringIO(log)))
    if not rows:
        return None
    if rows[-1].get("seconds"):
        return float(rows[-1]["seconds"])
    if rows[-1].get("seconds_per_step") and rows[-1].get("step"):  # a log of the mean time a step since the last row
        total, last = 0.0, 0
        for row in rows:
            total += (int(row["step"]) - last) * float(row["seconds_per_step"])
            last = int(row["step"])
        return total
    return None


def _curve(table: str | None) -> list[dict[str, float]]:
    """The train stage's checks (train_eval.csv): step and every numeric column, a row a check."""
    rows = []
    for row in csv.DictReader(io.StringIO(table or "")):
        numeric = {}
        for key, value in row.items():
            try:
                numeric[key] = float(value)
            except (TypeError, ValueError):
                continue
        if "step" in numeric:
            rows.append(numeric)
    return rows


def collect(source: Source) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> seed -> {"metrics": ..., "training_s": ...} for every (variant, seed) of the source's params.yaml
    that was evaluated."""
    from pipeline.config import read_yaml

    text = source.read("params.yaml")
    if text is None:
        raise ConfigError(f"{source.repo}: no params.yaml at {source.rev or 'the working tree'}")
    params = read_yaml(text) or {}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for variant in params.get("variants") or {}:
        for seed in params.get("seeds") or [0]:
            base = f"reports/variants/{variant}/seed{seed}"
            metrics = source.read(f"{base}/metrics.json")
            if metrics is None:
                continue
            curve = _curve(source.read(f"{base}/train_eval.csv"))
            seconds = curve[-1].get("seconds") if curve else None  # training time at the last check
            runs.setdefault(variant, {})[str(seed)] = {
                "metrics": json.loads(metrics),
                "training_s": seconds or _training_seconds(source.read(f"{base}/train_log.csv")), "curve": curve}
    return runs


def dumps(result: dict[str, Any]) -> str:
    """JSON with every innermost object (a run's metrics, a check of the curve) on one line: readable in a diff."""
    import re

    text = json.dumps(result, indent=1)
    return re.sub(r"\{\n[^{}\[\]]*?\n\s*\}", lambda m: "{" + " ".join(x.strip() for x in m.group(0)[1:-1].split("\n")
                                                                       if x.strip()) + "}", text) + "\n"


def record(name: str, source: Source, *, machine_text: str | None, load: str | None, wall_time: str | None,
           add: bool, root: Path = RESULTS, studies_dir: Path = Path("studies")) -> Path:
    """Write (or with `add`, extend) results/<name>/result.json from a finished study's files, and keep a copy of the
    study file beside it (its protocol). Returns the result file's path."""
    commit = source.commit()  # a revision that does not exist fails here, before anything is read
    runs = collect(source)
    if not runs:
        raise ConfigError(f"no evaluated run of study {name} in {source.repo} at {source.rev or 'the working tree'}: "
                          "nothing to record (did the evaluate stage run?)")
    folder = root / name
    path = folder / "result.json"
    study_file = studies_dir / f"{name}.yaml"  # the protocol as the lab now describes it (none: the default set)
    study_text = study_file.read_text() if study_file.exists() else None
    result: dict[str, Any] = json.loads(path.read_text()) if add and path.exists() else {}
    if result.get("source", "run") != "run":
        raise ConfigError(f"{path} holds transcribed summaries: record without --add to replace them")
    result.update({"study": name, "source": "run"})
    result.setdefault("commits", [])
    if commit not in result["commits"]:
        result["commits"].append(commit)
    result["machine"] = machine_text or result.get("machine") or machine()
    from importlib.metadata import version

    result["torch"] = version("torch").split("+")[0]
    for key, value in (("load", load), ("wall_time", wall_time)):
        if value is not None:
            result[key] = value
    merged = result.setdefault("runs", {})
    for variant, seeds in runs.items():
        merged.setdefault(variant, {}).update(seeds)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dumps(result))
    tmp.replace(path)
    if study_text is not None:
        (folder / "study.yaml").write_text(study_text)
    return path


# ---------------------------------------------------------------------------------------------------- rendering


@dataclass
class Study:
    name: str
    result: dict[str, Any]
    protocol: str                       # the study file's header comments
    study: dict[str, Any]               # the study file, parsed
    reading: str | None
    _summaries: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)  # (variant, metric) -> summary

    @property
    def title(self) -> str:
        if self.result.get("title"):
            return self.result["title"]
        # the study file's first sentence, up to its command: "<title>: `gan study <name>`"
        text = " ".join(line.strip() for line in self.protocol.splitlines())
        return text.split(": `gan study")[0].strip() if ": `gan study" in text else self.name

    def variants(self) -> list[str]:
        order = list(self.study.get("variants") or {})
        names = list(self.result.get("runs") or self.result.get("summary") or {})
        return [v for v in order if v in names] + [v for v in names if v not in order]

    def runs(self, variant: str):
        """The variant's recorded runs as the report stage holds them (`VariantRuns`), in seed order."""
        from pipeline.report.aggregate import RunResult, VariantRuns

        runs = (self.result.get("runs") or {}).get(variant, {})
        return VariantRuns(variant, [RunResult(int(seed), runs[seed]["metrics"], {}, {}, [], [])
                                     for seed in sorted(runs, key=int)])

    def values(self, variant: str, metric: str) -> list[float]:
        return [float(v) for v in self.runs(variant).values(metric)]

    def seeds(self, variant: str) -> list[int]:
        if self.result.get("source") == "run":
            return sorted(int(s) for s in (self.result["runs"].get(variant) or {}))
        return list(self.result["summary"][variant].get("seeds") or [])

    def summary(self, variant: str, metric: str) -> dict[str, Any] | None:
        if self.result.get("source") != "run":
            return (self.result["summary"].get(variant) or {}).get(metric)
        if (variant, metric) not in self._summaries:  # a bootstrap each: computed once, read by every table
            from pipeline.stats import summarize

            values = self.values(variant, metric)
            self._summaries[variant, metric] = summarize(values) if values else None
        return self._summaries[variant, metric]

    def columns(self) -> dict[str, str]:
        named = self.result.get("columns")
        if named:
            return dict(named)
        present = {m for v in self.variants() for m in self._metrics(v)}
        return {m: t for m, t in DEFAULT_COLUMNS.items() if m in present}

    def _metrics(self, variant: str) -> set[str]:
        if self.result.get("source") == "run":
            return {k for run in self.result["runs"][variant].values() for k in run["metrics"]}
        return set(self.result["summary"][variant])


def load(name: str, root: Path = RESULTS) -> Study:
    from pipeline.config import read_yaml

    folder = root / name
    path = folder / "result.json"
    if not path.exists():
        raise ConfigError(f"no results for study {name!r}: {path} is missing; results kept: "
                          f"{', '.join(available(root)) or 'none'}")
    result = json.loads(path.read_text())
    if result.get("source") not in ("run", "transcribed"):
        raise ConfigError(f"{path}: source must be run or transcribed, not {result.get('source')!r}")
    study_text = (folder / "study.yaml").read_text() if (folder / "study.yaml").exists() else ""
    protocol = "\n".join(line[1:].strip() if line.startswith("#") else "" for line in
                         _header(study_text)).strip()
    reading = (folder / "reading.md").read_text().strip() if (folder / "reading.md").exists() else None
    return Study(name, result, protocol, read_yaml(study_text) or {} if study_text else {}, reading)


def _header(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def available(root: Path = RESULTS) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/result.json"))


def decimals(value: float) -> int:
    magnitude = abs(value)
    return 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3 if magnitude >= 0.01 or magnitude == 0 else 4


def fmt(value: float | None, metric: str = "", places: int | None = None) -> str:
    if value is None:
        return "—"
    if metric.endswith("_frac"):
        return f"{100 * value:.1f}%"
    if places is None and float(value).is_integer() and (abs(value) >= 1 or value == 0):
        return f"{int(value)}"
    return f"{value:.{decimals(value) if places is None else places}f}"


def places_of(summary: dict[str, Any] | None) -> int | None:
    """The decimals a metric's numbers are shown with: a transcribed summary's own, else the mean's magnitude's, more
    where the sd needs them for its first two significant digits; None for a whole number that does not vary."""
    if not summary or summary.get("mean") is None:
        return None
    mean, sd = summary["mean"], summary.get("sd")
    if summary.get("places") is not None:
        return summary["places"]
    if float(mean).is_integer() and sd in (None, 0):
        return None
    places = decimals(mean)
    if sd:
        places = min(4, max(places, 1 - math.floor(math.log10(abs(sd)))))
    return places


def stat(summary: dict[str, Any] | None, metric: str, interval: bool = False) -> str:
    """mean ± sd (and with `interval` only the 95% bootstrap interval of the mean); one seed: its value."""
    if not summary or summary.get("mean") is None:
        return "—"
    mean = summary["mean"]
    places = places_of(summary)
    if interval:
        if summary.get("ci_low") is None:
            return "—"
        return f"[{fmt(summary['ci_low'], metric, places)}, {fmt(summary['ci_high'], metric, places)}]"
    text = fmt(mean, metric, places)
    if summary.get("sd") is not None:
        text += f" ± {fmt(summary['sd'], metric, places)}"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def reading(study: Study) -> str:
    """A person's reading of the numbers, with every number that the result file holds written from it: in
    reading.md, `{{ ms("a", "fid_classifier") }}` is a's mean ± sd, `{{ m(...) }}` the mean, `{{ each(...) }}` every
    seed's value ("184, 229 and 137"), `{{ span(...) }}` the lowest to the highest seed, `{{ run("a", 0, ...) }}` one
    seed's value, `{{ p("a", "b", metric) }}` the permutation test's p (`pmin`: the smallest over metrics),
    `{{ ahead("a", "b", metric) }}` in how many seeds
    a is better than b ("every seed", "2 of 3 seeds"), `{{ at_step("a", 1500, metric) }}` the seeds' range at one of the
    train stage's checks; an optional argument sets the decimals (`scale=100` shows a
    fraction as percent)."""
    import jinja2

    from pipeline.stats import permutation_test

    def number(value: float | None, places: int | None, metric: str, scale: float = 1.0) -> str:
        if value is None:
            raise ConfigError(f"results/{study.name}/reading.md asks for a number the result file does not hold")
        return fmt(value * scale, "" if scale != 1.0 else metric, places)

    def summary(variant: str, metric: str) -> dict[str, Any]:
        s = study.summary(variant, metric)
        if not s or s.get("mean") is None:
            raise ConfigError(f"results/{study.name}/reading.md: no {metric} for variant {variant!r}")
        return s

    def values(variant: str, metric: str) -> list[float]:
        out = study.values(variant, metric)
        if not out:
            raise ConfigError(f"results/{study.name}/reading.md: no per-seed {metric} for variant {variant!r}")
        return out

    def m(variant, metric, places=None, scale=1.0):
        return number(summary(variant, metric)["mean"], places, metric, scale)

    def ms(variant, metric, places=None, scale=1.0):
        s = summary(variant, metric)
        places = decimals(s["mean"] * scale) if places is None else places
        return f"{number(s['mean'], places, metric, scale)} ± {number(s['sd'], places, metric, scale)}"

    def each(variant, metric, places=None, scale=1.0):
        texts = [number(v, places, metric, scale) for v in values(variant, metric)]
        return ", ".join(texts[:-1]) + " and " + texts[-1] if len(texts) > 1 else texts[0]

    def span(variant, metric, places=None, scale=1.0):
        vs = values(variant, metric)
        return f"{number(min(vs), places, metric, scale)}-{number(max(vs), places, metric, scale)}"

    def run(variant, seed, metric, places=None, scale=1.0):
        value = ((study.result.get("runs") or {}).get(variant, {}).get(str(seed)) or {}).get("metrics", {}).get(metric)
        return number(value, places, metric, scale)

    def ahead(a, b, metric, lower=None):
        """In how many seeds a is better than b on the metric (same seed against same seed): "every seed" or
        "k of n seeds". Better is the metric's direction (lower=True/False overrides it)."""
        from pipeline.report.aggregate import direction

        sign = -1 if (lower if lower is not None else direction(metric) < 0) else 1
        runs = study.result.get("runs") or {}
        seeds = sorted(set(runs.get(a, {})) & set(runs.get(b, {})), key=int)
        pairs = [(runs[a][k]["metrics"].get(metric), runs[b][k]["metrics"].get(metric)) for k in seeds]
        pairs = [(x, y) for x, y in pairs if isinstance(x, (int, float)) and isinstance(y, (int, float))]
        if not pairs:
            raise ConfigError(f"results/{study.name}/reading.md: no seeds of both {a} and {b} with {metric}")
        wins = sum(sign * (x - y) > 0 for x, y in pairs)
        return "every seed" if wins == len(pairs) else f"{wins} of {len(pairs)} seeds"

    def at_step(variant, step, metric, places=None, scale=1.0):
        """The lowest to the highest seed's value at one of the train stage's checks."""
        vs = [row[metric] for run in ((study.result.get("runs") or {}).get(variant) or {}).values()
              for row in run.get("curve") or [] if int(row["step"]) == step and metric in row]
        if not vs:
            raise ConfigError(f"results/{study.name}/reading.md: no check of {metric} at step {step} for {variant!r}")
        return f"{number(min(vs), places, metric, scale)}-{number(max(vs), places, metric, scale)}"

    def p(a, b, metric):
        result = permutation_test(values(a, metric), values(b, metric))
        return "n/a" if result is None else f"{result:.2g}"

    def pmin(a, b, *metrics):
        """The smallest p of a against b over the metrics (every column of the table when none is named)."""
        results = [permutation_test(values(a, m), values(b, m)) for m in (metrics or study.columns())]
        results = [r for r in results if r is not None]
        return "n/a" if not results else f"{min(results):.2g}"

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(study.reading).render(m=m, ms=ms, each=each, span=span, run=run, p=p, pmin=pmin,
                                                     ahead=ahead, at_step=at_step)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"results/{study.name}/reading.md: {exc}") from exc


def render_study(study: Study) -> str:
    r = study.result
    columns = study.columns()
    variants = study.variants()
    lines = [f"# {study.title}", "", GENERATED.format(name=study.name), ""]
    command = "dvc repro" if study.name == DEFAULT else f"gan study {study.name}"
    lines += [f"Run it: `{command}`; record it: `gan results record {study.name} --rev <experiment>`; "
              f"this page: `gan results render`.", ""]
    commits = ", ".join(f"`{c}`" for c in r.get("commits") or [])
    facts = [("Commit", commits or "—"), ("Machine", r.get("machine", "—")), ("torch", r.get("torch", "—")),
             ("Load", r.get("load", "—")), ("Wall time", r.get("wall_time", "—"))]
    if r["source"] == "transcribed":
        facts.append(("Source", "summaries transcribed from the run's report; its per-seed files were not kept "
                                f"({r.get('note', '')})".replace(" ()", "")))
    else:
        facts.append(("Source", "every run's own metrics.json (per seed below)"))
    lines += [f"- **{k}**: {v}" for k, v in facts] + [""]
    how = ("computed by `gan results` from the per-seed values" if r["source"] == "run" else
           "as the run's report gave them")
    lines += ["## Results", "", f"Mean ± sd over the seeds (one seed: its value), {how}; the intervals below.", ""]
    rows = []
    for v in variants:
        seeds = study.seeds(v)
        rows.append([v, ", ".join(map(str, seeds)) or "—"] + [stat(study.summary(v, m), m) for m in columns])
    lines += _table(["variant", "seeds"] + list(columns.values()), rows) + [""]
    rows = [[v] + [stat(study.summary(v, m), m, interval=True) for m in columns] for v in variants]
    if any(cell != "—" for row in rows for cell in row[1:]):
        title = ("The lowest and highest seed" if r.get("interval") == "range" else
                 "95% intervals of the means")
        lines += [f"### {title}", ""] + _table(["variant"] + list(columns.values()), rows) + [""]
    lines += _published(study, variants)
    if study.reading:
        lines += ["## Reading", "", reading(study), ""]
    if r["source"] == "run" and any(len(study.seeds(v)) > 1 for v in variants):
        lines += ["## Every seed", ""]
        rows = []
        for v in variants:
            for seed in study.seeds(v):
                run = r["runs"][v][str(seed)]
                seconds = run.get("training_s")
                rows.append([v, str(seed)] + [_seed_value(run["metrics"].get(m), m, places_of(study.summary(v, m)))
                                              for m in columns]
                    + [f"{seconds / 60:.1f}" if seconds else "—"])
        lines += _table(["variant", "seed"] + list(columns.values()) + ["training min"], rows) + [""]
        lines += _differences(study, variants, columns)
    lines += _curves(study, variants)
    if study.protocol:
        lines += ["## Protocol", "", "From the study file (`results/" + study.name + "/study.yaml`, a copy of `studies/"
                  + study.name + ".yaml`):", ""]
        lines += ["> " + line if line else ">" for line in study.protocol.splitlines()] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _seed_value(value: Any, metric: str, places: int | None) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return fmt(value, metric, None if float(value).is_integer() else places)


def _differences(study: Study, variants: list[str], columns: dict[str, str]) -> list[str]:
    """The report stage's pairwise permutation tests (`aggregate.pairwise`) over the recorded seeds."""
    from pipeline.report.aggregate import pairwise
    from pipeline.stats import ALPHA, smallest_p

    fewest = min((len(study.seeds(v)) for v in variants), default=0)
    lines = ["## Differences beyond the seed spread", ""]
    if fewest < 2:
        return lines + ["A variant has one seed: no test.", ""]
    found = [f"- {columns[t.metric].rstrip(' ↑↓')}: {t.a} {fmt(t.mean_a, t.metric)} vs {t.b} "
             f"{fmt(t.mean_b, t.metric)} (p = {t.p:.2g})"
             for t in pairwise([study.runs(v) for v in variants], list(columns)) if t.differs]
    floor = smallest_p(fewest, fewest)
    lines.append(f"Two-sided permutation test over the seeds of each pair, p < {ALPHA}"
                 + (f"; with {fewest} seeds a side the smallest p possible is {floor:.2g}, so no pair can pass it:"
                    " read the per-seed table for differences seen in every seed." if floor >= ALPHA else ":"))
    lines.append("")
    if floor < ALPHA:
        lines += found or ["- none"]
        lines.append("")
    return lines


def _curves(study: Study, variants: list[str]) -> list[str]:
    """A table of the train stage's checks for each metric the result file names in `curves` (step by run)."""
    lines: list[str] = []
    for metric, title in (study.result.get("curves") or {}).items():
        runs = [(v, seed) for v in variants for seed in study.seeds(v)]
        by_step: dict[int, dict[tuple[str, int], float]] = {}
        for v, seed in runs:
            for row in study.result["runs"][v][str(seed)].get("curve") or []:
                if metric in row:
                    by_step.setdefault(int(row["step"]), {})[(v, seed)] = row[metric]
        if not by_step:
            continue
        header = ["step"] + [f"{v} seed {seed}" if len(variants) > 1 else f"seed {seed}" for v, seed in runs]
        rows = [[f"{step:,}"] + [fmt(values.get(run), metric) for run in runs]
                for step, values in sorted(by_step.items())]
        lines += [f"## {title}, at the train stage's checks", ""] + _table(header, rows) + [""]
    return lines


def _published(study: Study, variants: list[str]) -> list[str]:
    from pipeline.report.published import PUBLISHED

    report = study.study.get("report") or {}
    names = report.get("compare_with") or []
    lines: list[str] = []
    for name in names:
        table = PUBLISHED.get(name, "report.compare_with")
        rows = []
        for variant, published in table.rows.items():
            if variant not in variants:
                continue
            row = [variant]
            for metric in table.columns:
                scale = 100.0 if metric in table.percent else 1.0
                s = study.summary(variant, metric)
                lab = (stat({"mean": s["mean"] * scale, "places": s.get("places")}, "")
                       if s and s.get("mean") is not None else "—")
                pub = published.get(metric)
                row.append(f"{lab} / *{pub if pub is not None else '—'}*")
            rows.append(row)
        if not rows:
            continue
        lines += [f"## Beside the published numbers: {table.source}", "",
                  f"Published protocol: {table.protocol}.", ""]
        reduced = report.get("reduced")
        if reduced:
            lines += [f"**Reduced settings, not the published protocol**: {reduced.strip()}", ""]
        lines += ["Each cell: the lab's mean over its seeds / *the published value*.", ""]
        lines += _table(["variant"] + list(table.columns.values()), rows) + [""]
    return lines


def render_index(studies: list[Study]) -> str:
    lines = ["# Measured results", "", GENERATED.format(name="*"), "",
             "Every study's numbers, written from the result files kept in `results/<study>/` (the per-seed metrics "
             "of each run, the commit, machine and wall time). Rerun a study with `gan study <name>`, record it "
             "with `gan results record <name> --rev <experiment>` and write these pages with `gan results render`.",
             "", "| study | variants | seeds | commit | machine | wall time | source |",
             "|---|---|---|---|---|---|---|"]
    for s in studies:
        seeds = sorted({seed for v in s.variants() for seed in s.seeds(v)})
        lines.append(f"| [{s.title}]({s.name}.md) | {', '.join(s.variants())} | {', '.join(map(str, seeds))} | "
                     f"{', '.join(s.result.get('commits') or [])} | {s.result.get('machine', '—')} | "
                     f"{s.result.get('wall_time', '—')} | "
                     f"{'per-seed files' if s.result['source'] == 'run' else 'transcribed summaries'} |")
    return "\n".join(lines) + "\n"


def render_all(root: Path = RESULTS, pages: Path = PAGES) -> dict[Path, str]:
    """Every page the result files give: path -> text."""
    studies = [load(name, root) for name in available(root)]
    out = {pages / f"{s.name}.md": render_study(s) for s in studies}
    out[pages / "index.md"] = render_index(studies)
    return out


def stale(root: Path = RESULTS, pages: Path = PAGES) -> list[str]:
    """Pages that differ from what the result files give (or are missing, or are left from a removed study)."""
    expected = render_all(root, pages)
    problems = [f"{p} differs from what results/ gives" if p.exists() else f"{p} is missing"
                for p, text in expected.items() if not p.exists() or p.read_text() != text]
    problems += [f"{p} has no result files behind it" for p in sorted(pages.glob("*.md")) if p not in expected]
    return problems
