"""Studies: named sets of variants (studies/<name>.yaml) run as DVC experiments.

A study file holds recipe keys to change and a `variants:` set that *replaces* the default one.
`gan study <name>` turns it into `dvc exp run -S ...` overrides (Hydra syntax: `~variants` drops
the default set, `+variants={...}` adds the study's), so each study is an ordinary, reproducible
DVC experiment that `dvc exp show` and the MLflow UI list beside the others.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from pipeline.config import deep_merge, flatten, read_yaml
from pipeline.errors import ConfigError
from pipeline.variants import lab_from_raw

STUDIES = Path("studies")


def available() -> list[str]:
    return sorted(p.stem for p in STUDIES.glob("*.yaml"))


def load_study(name: str) -> dict[str, Any]:
    path = STUDIES / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown study {name!r}; studies in {STUDIES}/: {', '.join(available()) or 'none'}")
    study = read_yaml(path.read_text()) or {}
    if not isinstance(study.get("variants"), Mapping) or not study["variants"]:
        raise ConfigError(f"{path}: a study needs a non-empty variants: mapping")
    return study


def apply_study(params_raw: Mapping[str, Any], study: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml as the experiment will see it: recipe keys merged, variants replaced. Validated."""
    recipe = {k: v for k, v in study.items() if k != "variants"}
    merged = deep_merge({k: v for k, v in params_raw.items() if k != "variants"}, recipe)
    merged["variants"] = dict(study["variants"])
    lab = lab_from_raw(merged)  # any bad key or name fails here, before DVC starts anything
    from pipeline.report.published import PUBLISHED

    for name in lab.params.report.compare_with:
        PUBLISHED.get(name, "report.compare_with")
    return merged


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar (what `dvc exp run -S` parses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):  # Hydra reads 5e-05 as a string: its floats need a '.' (5.0e-05)
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, str):
        return value if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value) else "'" + value.replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {hydra_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot express {value!r} as a -S override")


def overrides(study: Mapping[str, Any]) -> list[str]:
    """The `-S` arguments that turn params.yaml into the study's."""
    recipe = {k: v for k, v in study.items() if k != "variants"}
    args = [f"{key}={hydra_value(value)}" for key, value in flatten(recipe).items()]
    return args + ["~variants", f"+variants={hydra_value(study['variants'])}"]
