"""The documentation: the results pages are what the result files give, the site builds with `mkdocs build
--strict`, and every `gan ...` and `dvc ...` command the README and the docs show exists with the options it uses."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import results

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "results").glob("*/reading.md"))]


# ------------------------------------------------------------------------------------------------- results pages


def test_results_pages_are_what_the_result_files_give(monkeypatch):
    monkeypatch.chdir(REPO)
    assert results.available(), "no result files in results/"
    assert results.stale() == []
    # every study page is in the site's navigation
    nav = (REPO / "mkdocs.yml").read_text()
    assert [n for n in results.available() if f"results/{n}.md" not in nav] == []


def test_a_changed_result_file_makes_its_page_stale(tmp_path, monkeypatch):
    shutil.copytree(REPO / "results", tmp_path / "results")
    shutil.copytree(REPO / "docs" / "results", tmp_path / "pages")
    monkeypatch.chdir(tmp_path)
    assert results.stale(Path("results"), Path("pages")) == []
    path = Path("results/translation/result.json")
    data = json.loads(path.read_text())
    data["runs"]["sr4_l1"]["0"]["metrics"]["psnr"] += 1.0
    path.write_text(json.dumps(data))
    assert results.stale(Path("results"), Path("pages")) == ["pages/translation.md differs from what results/ gives"]
    Path("pages/extra.md").write_text("# typed by hand\n")
    assert "pages/extra.md has no result files behind it" in results.stale(Path("results"), Path("pages"))


def _workspace(root: Path) -> Path:
    """A finished two-variant, two-seed study's files, committed in a git repository."""
    (root / "studies").mkdir(parents=True)
    (root / "studies" / "mini.yaml").write_text("# A mini study: `gan study mini`\n# Published: none.\nseeds: [0, 1]\n"
                                                "variants:\n  a: {}\n  b: {loss: hinge}\n")
    (root / "params.yaml").write_text("seeds: [0, 1]\nvariants:\n  a: {}\n  b: {loss: hinge}\n")
    values = {("a", 0): 10.0, ("a", 1): 14.0, ("b", 0): 20.0, ("b", 1): 30.0}
    for (variant, seed), fid in values.items():
        run = root / "reports" / "variants" / variant / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"fid_classifier": fid, "classes_covered": 10,
                                                      "n_samples": 4500}))
        (run / "train_log.csv").write_text("step,loss_d,seconds\n100,0.5,30.0\n200,0.4,60.0\n")
        (run / "train_eval.csv").write_text(f"step,fid_classifier\n100,{fid * 2}\n200,{fid}\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "study"], check=True)
    return root


def test_record_then_render_computes_the_summaries(tmp_path, monkeypatch):
    repo = _workspace(tmp_path / "clone")
    monkeypatch.chdir(tmp_path)
    path = results.record("mini", results.Source(repo, None), machine_text="test CPU", load="alone",
                          wall_time="2 minutes", add=False, root=Path("results"), studies_dir=repo / "studies")
    data = json.loads(path.read_text())
    assert data["source"] == "run" and data["machine"] == "test CPU" and len(data["commits"][0]) == 7
    assert data["runs"]["b"]["1"]["metrics"]["fid_classifier"] == 30.0
    assert data["runs"]["a"]["0"]["training_s"] == 60.0
    assert data["runs"]["a"]["0"]["curve"] == [{"step": 100.0, "fid_classifier": 20.0},
                                               {"step": 200.0, "fid_classifier": 10.0}]
    assert (Path("results/mini/study.yaml").read_text()).startswith("# A mini study")
    page = results.render_study(results.load("mini", Path("results")))
    # mean ± sd over the two seeds, computed from the per-seed values: a 12.0 ± 2.8, b 25.0 ± 7.1
    assert "| a | 0, 1 | 12.0 ± 2.8 | 10 ± 0 |" in page
    assert "| b | 0, 1 | 25.0 ± 7.1 | 10 ± 0 |" in page
    assert "| b | 1 | 30 | 10 | 1.0 |" in page  # every seed, with its training minutes
    assert "the smallest p possible is 0.33" in page  # 2 seeds a side cannot pass a 5% test
    assert "A mini study" in page and "test CPU" in page and "2 minutes" in page
    # seeds run apart are added, not overwritten
    (repo / "params.yaml").write_text("seeds: [2]\nvariants:\n  a: {}\n")
    run = repo / "reports" / "variants" / "a" / "seed2"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"fid_classifier": 12.0}))
    results.record("mini", results.Source(repo, None), machine_text=None, load=None, wall_time=None, add=True,
                   root=Path("results"), studies_dir=repo / "studies")
    data = json.loads(path.read_text())
    assert sorted(data["runs"]["a"]) == ["0", "1", "2"] and data["machine"] == "test CPU"


def test_record_refuses_a_study_with_no_evaluated_run(tmp_path):
    repo = _workspace(tmp_path / "clone")
    shutil.rmtree(repo / "reports")
    with pytest.raises(results.ConfigError, match="no evaluated run of study mini"):
        results.record("mini", results.Source(repo, None), machine_text=None, load=None, wall_time=None,
                       add=False, root=tmp_path / "results", studies_dir=repo / "studies")
    assert not (tmp_path / "results").exists()


def test_gan_results_render_check_fails_on_a_stale_page(tmp_path):
    shutil.copytree(REPO / "results", tmp_path / "results")
    shutil.copytree(REPO / "docs" / "results", tmp_path / "docs" / "results")
    page = tmp_path / "docs" / "results" / "semi_mnist.md"
    page.write_text(page.read_text().replace("| semi | 0, 1, 2 |", "| semi | 0, 1, 2, 3 |"))
    gan = [sys.executable, "-c", "from pipeline.cli import main; main()"]
    done = subprocess.run(gan + ["results", "render", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert "docs/results/semi_mnist.md differs from what results/ gives" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(gan + ["results", "render"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and (REPO / "docs/results/semi_mnist.md").read_text() == page.read_text()


# -------------------------------------------------------------------------------------------------------- the site


def _mkdocs(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=root,
                          capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})


def test_the_site_builds_strictly_and_a_broken_link_fails_it(tmp_path):
    done = _mkdocs(REPO, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    for page in ("index.html", "course/index.html", "results/index.html", "results/translation/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    assert "Test error of the averaged D" in (tmp_path / "site/results/semi_mnist/index.html").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copy(REPO / "mkdocs.yml", copy)
    page = copy / "docs" / "course.md"
    page.write_text(page.read_text() + "\nSee [a page that is not there](nowhere.md).\n")
    done = _mkdocs(copy, tmp_path / "site2")
    assert done.returncode != 0 and "nowhere.md" in done.stderr


# ----------------------------------------------------------------------------------------------------- commands


def commands(text: str) -> list[str]:
    """Every `gan ...` / `dvc ...` command of a Markdown text: lines of its code blocks and its inline code spans."""
    found, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                tokens = list(lexer)
            except ValueError:  # not a shell line (a heredoc's body, Python)
                continue
            part: list[str] = []
            for token in tokens + [";"]:
                if token in ("&&", "||", "|", ";", "&", "(", ")"):
                    found.append(shlex.join(part)) if part else None
                    part = []
                else:
                    part.append(token)
    found += re.findall(r"`((?:gan|dvc) [^`]+)`", text)
    return [c for c in found if re.match(r"(gan|dvc) ", c)]


def _args(command: str) -> list[str]:
    command = re.sub(r"<[^>]+>", "x", command)  # placeholders: <experiment>, <name>
    return [a for a in shlex.split(command, comments=True) if a not in ("...", "…")]


def check(command: str) -> str | None:
    """None when the command's subcommand and options exist (parsed, not run), else what is wrong."""
    args = _args(command)
    if args[0] == "gan":
        import typer

        from pipeline.cli import app

        cmd = typer.main.get_command(app)  # typer's own copy of click: its errors carry format_message()
        try:
            ctx = cmd.make_context("gan", args[1:])
            while hasattr(cmd, "resolve_command"):  # a group: walk down to the subcommand
                rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
                if not rest:
                    break
                name, cmd, rest = cmd.resolve_command(ctx, rest)
                ctx = cmd.make_context(name, rest, parent=ctx)
        except Exception as exc:  # noqa: BLE001 - click's exceptions, whichever copy raised them
            if type(exc).__name__ == "Exit":  # --help, a group without a subcommand
                return None
            if hasattr(exc, "format_message"):
                message = exc.format_message()
                bare = not any(a.startswith("-") for a in args)
                # a command named in prose without its arguments (`gan arithmetic` for any triple) exists
                return None if bare and message.startswith("Missing argument") else message
            raise
        return None
    import logging

    from dvc.cli import DvcParserError
    from dvc.cli.parser import get_main_parser

    def parses(words: list[str]) -> bool:
        logging.disable(logging.CRITICAL)  # dvc's parser logs its complaint; the answer is enough here
        try:
            get_main_parser().parse_args(words)
        except (DvcParserError, SystemExit) as exc:
            return isinstance(exc, SystemExit) and exc.code == 0  # -h on a command that exists
        finally:
            logging.disable(logging.NOTSET)
        return True

    if parses(args[1:]):
        return None
    if not any(a.startswith("-") for a in args[1:]) and parses(args[1:] + ["-h"]):
        return None  # a command named in prose without its arguments (`dvc exp`, `dvc queue start`)
    return "dvc cannot parse it"


def test_every_command_in_the_docs_exists(capsys):
    seen, wrong = 0, []
    for path in DOCS:
        for command in commands(path.read_text()):
            seen += 1
            problem = check(command)
            if problem:
                wrong.append(f"{path.relative_to(REPO)}: `{command}`: {problem}")
    capsys.readouterr()  # dvc's parser prints its usage on a bad line
    assert wrong == [], "\n".join(wrong)
    assert seen > 100  # the docs show many: a regex that finds none must not pass


def test_the_command_check_can_fail(capsys):
    assert check("gan sample dcgan --n 64") is None
    assert check("dvc exp show --only-changed --drop 'Created|.*/'") is None
    assert "No such option" in check("gan sample dcgan --colour red")
    assert "No such command" in check("gan sampel dcgan")
    assert check("gan results render --check") is None
    assert "No such option" in check("gan results record x --commit y")
    assert check("dvc exp shw") is not None
    assert check("dvc metrics show --nope") is not None
    capsys.readouterr()
    assert commands("text `gan study mini` and\n```bash\ndvc repro  # all\nls && gan ui\n```\n") == [
        "dvc repro", "gan ui", "gan study mini"]


# Numbers a reading types that equal a held value by coincidence, with why they are not that value.
NOT_HELD = {("default", "98.4%"): "the classifier's held-out accuracy (reports/classifier.json), not cas_real"}


def test_no_reading_types_a_number_its_result_file_holds():
    """A reading writes the numbers its result file holds through the template (`{{ ms(...) }}`, `{{ span(...) }}`,
    ...), so a rerun cannot leave a stale number behind: a typed number of 3 or more significant digits that equals a
    per-seed value, a mean or an sd of the file (at the digits typed) fails here."""
    found = []
    for name in results.available(REPO / "results"):
        study = results.load(name, REPO / "results")
        if study.result["source"] != "run" or not study.reading:
            continue
        held = set()
        for variant, seeds in study.result["runs"].items():
            metrics = {m for run in seeds.values() for m, v in run["metrics"].items()
                       if isinstance(v, (int, float)) and not m.startswith("n_")}  # n_*: sizes of the protocol
            held |= {float(run["metrics"][m]) for run in seeds.values() for m in metrics
                     if isinstance(run["metrics"].get(m), (int, float))}
            for m in metrics:
                s = study.summary(variant, m)
                held |= {float(s[k]) for k in ("mean", "sd") if s and s.get(k) is not None}
        text = re.sub(r"\{\{.*?\}\}|!\[[^\]]*\]\([^)]*\)", "", study.reading, flags=re.S)
        for match in re.finditer(r"(?<![\w.,])(\d[\d,]*\.?\d*)(%?)(?![\w.])", text):
            digits, percent = match.group(1).replace(",", ""), match.group(2)
            if len(digits.replace(".", "").lstrip("0")) < 3 or (name, match.group(0)) in NOT_HELD:
                continue
            places = len(digits.partition(".")[2])
            value = float(digits) / (100 if percent else 1)
            places += 2 if percent else 0
            if any(round(h, places) == round(value, places) for h in held):
                found.append(f"results/{name}/reading.md: {match.group(0)}")
    assert found == []


def test_gan_results_record_names_a_bad_experiment_and_writes_nothing(tmp_path):
    repo = _workspace(tmp_path / "clone")
    gan = [sys.executable, "-c", "from pipeline.cli import main; main()"]
    done = subprocess.run(gan + ["results", "record", "mini", "--repo", str(repo), "--rev", "nosuch"], cwd=repo,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--rev nosuch: no experiment or commit of that name in {repo}" in done.stderr
    assert not (repo / "results").exists()
    done = subprocess.run(gan + ["results", "record", "nosuch"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2 and "unknown study 'nosuch'; studies in studies/: mini" in done.stderr
    done = subprocess.run(gan + ["results", "record", "mini", "--machine", "m"], cwd=repo, capture_output=True,
                          text=True)
    assert done.returncode == 0 and json.loads((repo / "results/mini/result.json").read_text())["machine"] == "m"
