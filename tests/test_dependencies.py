"""dvc.yaml's code deps are exactly the code each stage runs: measured by running every stage and
listing the package modules it loaded, and checked by editing the files that share their dependent stages
and asking `dvc status` which stages that changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import repo_copy

pytestmark = pytest.mark.slow

# MLflow logging decides where results are recorded, not what they are: not a dep of any stage
NOT_DEPS = {"pipeline/tracking.py", "pipeline/tracking_mlflow.py"}
STAGE_RUNS = [("prepare", []), ("resolve", []), ("classifier", []), ("train", ["dcgan"]), ("sample", ["dcgan"]), ("evaluate", ["dcgan"]),
              ("report", [])]
# a stage loads its variant's task's code only: the other tasks' variants' runs make up the rest of its deps
OTHER_TASK_RUNS = [(stage, [variant]) for variant in ("sr4", "cyc", "semi", "vox", "stk")
                   for stage in ("train", "sample", "evaluate")]
TASK_STAGES = {"sr4": "pipeline/tasks/translate/task.py", "cyc": "pipeline/tasks/cycle/task.py",
               "semi": "pipeline/tasks/semi/task.py", "vox": "pipeline/tasks/generate/voxel.py",
               "stk": "pipeline/tasks/stack/task.py"}

# runs a stage as `python -m stages.<name>` would, then lists the package files it loaded
LOADED = """
import atexit, runpy, sys
from pathlib import Path
root = Path.cwd().resolve()
sys.path.insert(0, str(root))
out, stage, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def dump():
    files = {Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    Path(out).write_text("\\n".join(sorted(f.relative_to(root).as_posix() for f in files
                                            if f.is_relative_to(root) and f.relative_to(root).parts[0] in ("pipeline", "stages"))))
atexit.register(dump)
sys.argv = [f"stages/{stage}.py", *args]
runpy.run_module(f"stages.{stage}", run_name="__main__", alter_sys=True)
"""


def code_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for d in ("pipeline", "stages") for p in (root / d).rglob("*.py")
                  if "__pycache__" not in p.parts)


def declared_code_deps(root: Path) -> dict[str, set[str]]:
    """stage -> the .py files its dvc.yaml deps name (folders expanded)."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        files: set[str] = set()
        for dep in stage.get("do", stage)["deps"]:
            path = root / dep
            if dep.startswith(("pipeline", "stages")):
                files |= {p.relative_to(root).as_posix() for p in path.rglob("*.py")} if path.is_dir() else {dep}
        out[name] = files
    return out


def test_each_stage_depends_on_exactly_the_code_it_loads(repo, tmp_path):
    root = repo_copy(repo, tmp_path)
    (tmp_path / "loaded.py").write_text(LOADED)
    declared = declared_code_deps(root)
    env = {**os.environ, "GAN_LAB_TRACKING": "off"}
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"]["sr4"] = {"task": "translate", "data": {"translate": "sr4"}}
    params["variants"]["cyc"] = {"task": "cycle", "loss": "lsgan", "data": {"cycle_with": "digits"}}
    params["variants"]["semi"] = {"task": "semi", "data": {"labels_per_class": 10}}
    params["variants"]["vox"] = {"task": "voxel", "dataset": "shapes3d", "data": {"image_size": 8}}
    params["variants"]["stk"] = {"task": "stack"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    loaded: dict[str, set[str]] = {}
    for i, (stage, args) in enumerate(STAGE_RUNS + OTHER_TASK_RUNS):
        listing = tmp_path / f"{i}.txt"
        result = subprocess.run([sys.executable, str(tmp_path / "loaded.py"), str(listing), stage, *args], cwd=root,
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        files = set(listing.read_text().split()) - NOT_DEPS
        assert f"stages/{stage}.py" in files and "pipeline/config.py" in files
        if args and args[0] in TASK_STAGES:
            assert TASK_STAGES[args[0]] in files
        loaded[stage] = loaded.get(stage, set()) | files
    (tmp_path / "loaded.json").write_text(json.dumps({k: sorted(v) for k, v in loaded.items()}))  # to update dvc.yaml
    wrong = {stage: {"missing from dvc.yaml": sorted(files - declared[stage]),
                     "declared but not loaded": sorted(declared[stage] - files)}
             for stage, files in loaded.items() if declared[stage] != files}
    assert not wrong, wrong


def test_editing_code_changes_exactly_the_stages_that_depend_on_it(repo, tmp_path, monkeypatch):
    """The code files grouped by the stages dvc.yaml says depend on them; editing a group's files makes `dvc
    status` name exactly those stages (a `dvc status` per group, not per file: about 15 instead of 90). The
    issue's cases included: config.py reruns training, sampling.py and the module that sets the sample count
    (kinds) rerun sampling, the uint8 conversion (images.py) reruns evaluation; a report edit (its captions and
    figures included) reruns only what draws it, never training."""
    from dvc.repo import Repo

    root = repo_copy(repo, tmp_path)
    declared = declared_code_deps(root)
    groups: dict[frozenset[str], list[str]] = {}
    for name in code_files(root):
        groups.setdefault(frozenset(stage for stage, files in declared.items() if name in files), []).append(name)
    assert len(groups) > 5
    changed_by: dict[str, set[str]] = {}
    monkeypatch.chdir(root)  # dvc names stages relative to the working directory
    with Repo(str(root)) as dvc:
        assert dvc.status() == {}, "the tiny pipeline must be up to date before editing"
        for expected, names in groups.items():
            originals = {name: (root / name).read_text() for name in names}
            for name, text in originals.items():
                (root / name).write_text(text + "\n# an edit\n")
            try:
                changed = {stage.rsplit(":", 1)[-1].split("@")[0] for stage in dvc.status()}
            finally:
                for name, text in originals.items():
                    (root / name).write_text(text)
            assert changed == expected, (names, sorted(changed), sorted(expected))
            changed_by.update(dict.fromkeys(names, changed))
        assert dvc.status() == {}
    for name in ("pipeline/config.py", "pipeline/sampling.py", "pipeline/kinds/image.py"):
        assert {"train", "sample"} & changed_by[name], name
    assert "evaluate" in changed_by["pipeline/images.py"]
    for name in ("pipeline/report/render.py", "pipeline/report/aggregate.py"):
        assert changed_by[name] == {"report"}, name  # a report-only edit reruns only the report
    for name in ("pipeline/figures/kinds.py", "pipeline/figures/plots.py"):
        assert "train" not in changed_by[name], name  # a caption or a figure never retrains
