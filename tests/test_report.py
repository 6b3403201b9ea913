"""The report: rendered from a small fixture of stage outputs (grayscale conditional, RGB, 2D points,
and a variant whose evaluation has not run), checked as HTML and in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import pandas as pd
import pytest
import torch
from conftest import chromium_command, image_data

from pipeline import paths
from pipeline.config import DataConfig
from pipeline.data import prepare_dataset, save_prepared
from pipeline.images import image_grid, save_png
from pipeline.io import write_json
from pipeline.variants import lab_from_raw

VARIANTS = {
    "cgan": {"conditional": True},
    "rgb": {"dataset": "cifar10"},  # stand-in RGB data prepared under that name
    "ring": {"dataset": "ring8", "arch": "toy", "loss": "wgan_gp"},
    "pending": {"loss": "hinge"},
}


def fake_prepared(name: str, channels: int):
    prepared = image_data(n=80, channels=channels, size=28 if channels == 1 else 32)
    prepared.name = name
    prepared.info["name"] = name
    return prepared


SEEDS = [0, 1, 2]
FIDS = {"cgan": [3.5, 3.0, 4.0], "rgb": [9.0, 8.5, 9.5]}


def write_variant(name: str, kind: str, seed: int = 0, evaluated: bool = True, fid: float = 9.0,
                  improving: bool = False) -> None:
    run = paths.run_name(name, seed)
    paths.report_dir(run).mkdir(parents=True, exist_ok=True)
    steps = [10, 20, 30]
    log = {"step": steps, "loss_d": [1.2, 0.9, 0.7 + seed / 10], "loss_g": [0.8, 1.1, 1.4], "d_real": [0.6, 0.7, 0.7],
           "d_fake": [0.4, 0.3, 0.3]}
    pd.DataFrame(log).to_csv(paths.train_log_path(run), index=False)
    costs = {"step": steps, "images_d": [640, 1280, 1920], "seconds": [1.0 + seed, 2.0 + seed, 3.0 + seed]}
    evals = ({**costs, "modes_captured": [3, 6, 8], "high_quality_frac": [0.5, 0.8, 0.9],
              "reverse_kl": [1.0, 0.3, 0.05]} if kind == "points"
             else {**costs, "classes_covered": [4, 8, 10], "class_kl": [0.9, 0.2, 0.05],
                   "fid_classifier": [40.0, 20.0 + seed, fid]})
    pd.DataFrame(evals).to_csv(paths.train_eval_path(run), index=False)
    write_json({"precision": "fp32", "device": "cpu", "g_updates": 30, "d_updates": 30,
                **({"fid_drop_last_quarter": 0.5, "still_improving": improving} if kind != "points" else {})},
               paths.training_summary_path(run))
    save_png(image_grid(torch.rand(16, 3 if name == "rgb" else 1, 28, 28) * 2 - 1, 4), paths.samples_png(run))
    latent = paths.latent_dir(run)
    latent.mkdir(parents=True, exist_ok=True)
    if kind == "points":
        write_json({"interpolation": {"unavailable": "2D point data: see the scatter plot instead"},
                    "direction": {"unavailable": "2D point data: see the scatter plot instead"}}, latent / "index.json")
    else:
        save_png(image_grid(torch.zeros(8, 1, 28, 28), 4), latent / "interpolation.png")
        write_json({"interpolation": {"file": "interpolation.png", "mode": "spherical", "rows": 2, "steps": 4},
                    "direction": {"unavailable": "conditional model: the class grid shows controllable generation"}},
                   latent / "index.json")
    if not evaluated:
        return
    if kind == "points":
        metrics = {"n_samples": 2500, "modes_captured": 8, "high_quality_frac": 0.93, "reverse_kl": 0.04}
        hist = {"class_names": [f"mode{i}" for i in range(8)], "generated": [300] * 8, "real": [100] * 8}
    else:
        metrics = {"n_samples": 500, "classes_covered": 10 if name == "cgan" else 7, "class_kl": 0.01,
                   "fid_classifier": fid, "kid_mean_classifier": 0.2,
                   "kid_std_classifier": 0.01, "precision_classifier": 0.8, "recall_classifier": 0.7,
                   "diversity_ssim": 0.2, "diversity_ssim_real": 0.18}
        hist = {"class_names": [str(i) for i in range(10)], "generated": [50] * 10, "real": [8] * 10}
    write_json(metrics, paths.metrics_path(run))
    write_json(hist, paths.class_hist_path(run))
    if kind != "points":
        write_json({"classifier": {"features": "classifier", "network": "the lab's classifier (models/classifier)",
                                   "layer": "128-d penultimate layer", "weights_sha256": "0123456789ab",
                                   "n_generated": 500, "n_reference": 500, "resize": "none (1x28x28, as generated)",
                                   "kid_subset_size": 500, "reference": "mnist5k train split"}},
                   paths.fid_protocol_path(run))


@pytest.fixture
def report_project(tmp_path, monkeypatch, params_raw):
    """Three seeds of each variant: cgan and rgb evaluated (rgb's seed 1 still improving), ring (2D),
    and pending, trained but never evaluated."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_LAB_TRACKING", "off")  # MLflow's side of the report: tests/test_pipeline_e2e.py
    save_prepared(fake_prepared("mnist5k", 1), paths.prepared_dir("mnist5k"))
    save_prepared(fake_prepared("cifar10", 3), paths.prepared_dir("cifar10"))
    save_prepared(prepare_dataset("ring8", DataConfig()), paths.prepared_dir("ring8"))
    write_json({"mnist5k": {"available": True, "test_accuracy": 0.984, "n_test": 500},
                "cifar10": {"available": True, "test_accuracy": 0.5, "n_test": 16},
                "ring8": {"available": False, "reason": "2D points: metrics use the mixture geometry"}},
               paths.CLASSIFIER_METRICS)
    for name in VARIANTS:
        for seed in SEEDS:
            if name == "pending":
                write_variant(name, "image", seed, evaluated=False)
            elif name == "ring":
                write_variant(name, "points", seed)
            else:
                write_variant(name, "image", seed, fid=FIDS[name][seed], improving=name == "rgb" and seed == 1)
    params_raw["variants"] = VARIANTS
    params_raw["seeds"] = SEEDS
    (tmp_path / "params.yaml").write_text(__import__("yaml").safe_dump(params_raw, sort_keys=False))
    from stages.report import main

    main()
    return tmp_path


def test_every_variant_has_a_section_with_its_pictures(report_project):
    html = (report_project / "reports/index.html").read_text()
    for name in VARIANTS:
        section = html.split(f'<section class="variant" id="{name}">', 1)[1].split("</section>", 1)[0]
        assert f"<h2>{name}</h2>" in section
        assert "generated" in section and "losses" in section
    ring = html.split('id="ring">', 1)[1].split("</section>", 1)[0]
    assert "interpolation: not shown (2D point data" in ring and "Seeds: 0, 1, 2; pictures from seed 0" in ring
    pending = html.split('id="pending">', 1)[1]
    assert "Missing: seed 0: metrics (evaluate stage has not run)" in pending and "none evaluated yet" in pending
    assert 'id="rgb">' in html and "real cifar10" in html


def test_every_variants_samples_come_before_the_recipe_which_folds_away(report_project):
    html = (report_project / "reports/index.html").read_text()
    gallery = html.split('<div class="row" id="gallery">', 1)[1].split("</div>", 1)[0]
    assert [re.search(r'alt="(\w+) samples"', f).group(1) for f in gallery.split("<figure>")[1:1 + len(VARIANTS)]] \
        == list(VARIANTS)
    assert html.index('id="gallery"') < html.index('<details id="shared-recipe">') < html.index('id="recipe"')
    for name in VARIANTS:  # each variant's 20-odd resolved settings fold away too
        section = html.split(f'<section class="variant" id="{name}">', 1)[1].split("</section>", 1)[0]
        assert '<details class="resolved"><summary>Trained with' in section


def test_images_are_embedded_and_decode(report_project):
    html = (report_project / "reports/index.html").read_text()
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(sources) >= 4 * 4
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    figures = sorted(p.name for p in (report_project / "reports/figures").iterdir())
    assert figures[:2] == ["cgan_hist.png", "cgan_kl.png"]
    assert {"shared_fid_classifier.png", "shared_classes_covered.png", "shared_modes_captured.png"} <= set(figures)


def test_tables_are_filled_and_best_values_marked(report_project):
    html = (report_project / "reports/index.html").read_text()
    for table in re.findall(r"<table.*?</table>", html, flags=re.S):
        assert table.count("<tr>") >= 2, table[:200]
    metrics = re.search(r'<table class="metrics" id="metrics">.*?</table>', html, flags=re.S).group(0)
    # cgan's FIDs 3.5, 3.0, 4.0: mean 3.5, sd 0.5, the bootstrap interval inside [3, 4]; the lowest mean wins
    best = re.search(r'<td class="best">\s*3.5 ± 0.5 \[([\d.]+), ([\d.]+)\]\s*</td>', metrics)
    assert best and 3.0 <= float(best.group(1)) < 3.5 < float(best.group(2)) <= 4.0
    assert re.search(r'<td class="best">\s*8 ± 0 \[8, 8\]\s*</td>', metrics)  # the only modes_captured
    assert "still improving (1 of 3 seeds)" in metrics.split("rgb", 1)[1].split("</tr>", 1)[0]
    assert "unavailable: 2D points" in html  # no classifier for ring8, said plainly
    markdown = (report_project / "reports/report.md").read_text()
    assert "| cgan | 3 |" in markdown and "**3.5 ± 0.5 [" in markdown and "| pending | 0 |" in markdown


def test_summary_json_holds_mean_sd_interval_and_seeds(report_project):
    """reports/summary.json (a DVC metrics file): what `dvc exp show` lists per variant."""
    summary = json.loads((report_project / "reports/summary.json").read_text())
    fid = summary["cgan"]["fid_classifier"]
    assert fid["mean"] == pytest.approx(3.5) and fid["sd"] == pytest.approx(0.5) and fid["n"] == 3
    assert 3.0 <= fid["ci_low"] < 3.5 < fid["ci_high"] <= 4.0
    assert summary["cgan"]["seeds"] == 3 and summary["rgb"]["still_improving_seeds"] == 1
    assert summary["pending"] == {"seeds": 0, "still_improving_seeds": 0}
    assert "n_samples" not in summary["cgan"] and "kid_std_classifier" not in summary["cgan"]


def test_three_seeds_are_too_few_for_the_test_and_the_page_says_so(report_project):
    """cgan's FIDs (3.0-4.0) against rgb's (8.5-9.5) separate completely, yet with 3 seeds a side the
    smallest possible permutation p-value is 0.1: no difference can be declared, and the page says why."""
    html = (report_project / "reports/index.html").read_text()
    assert "With 3 seeds a side the smallest p-value possible is 0.1" in html
    table = re.search(r'<table id="differences">.*?</table>', html, flags=re.S).group(0)
    row = table.split("<td>fid_classifier</td><td>cgan</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>rgb</td>" in row and "<td>0.1</td>" in row and "within the seed spread" in row


def test_five_seeds_can_separate_variants_and_one_cannot(tmp_path, monkeypatch, params_raw):
    from pipeline.report.render import render

    monkeypatch.chdir(tmp_path)
    save_prepared(fake_prepared("mnist5k", 1), paths.prepared_dir("mnist5k"))
    params_raw["variants"] = {"good": {}, "bad": {"loss": "lsgan"}, "noisy": {"loss": "hinge"}}
    params_raw["seeds"] = [0, 1, 2, 3, 4]
    fids = {"good": [3.0, 3.2, 2.9, 3.1, 3.3], "bad": [9.0, 8.7, 9.4, 9.1, 8.8], "noisy": [2.0, 9.0, 3.0, 8.5, 4.0]}
    for name, values in fids.items():
        for seed, fid in enumerate(values):
            write_variant(name, "image", seed, fid=fid)
    rendered = render(lab_from_raw(params_raw), tmp_path / "figures")
    html, markdown = rendered.html, rendered.markdown
    table = re.search(r'<table id="differences">.*?</table>', html, flags=re.S).group(0)
    fid_rows = [r for r in table.split("<tr>") if r.startswith("<td>fid_classifier</td>")]
    verdict = {tuple(re.findall(r"<td>(good|bad|noisy)</td>", r)): r for r in fid_rows}
    assert "<strong>differ</strong>" in verdict[("good", "bad")] and "<td>0.007937</td>" in verdict[("good", "bad")]
    assert "within the seed spread" in verdict[("good", "noisy")]  # noisy's seeds straddle good's
    assert "| fid_classifier | good | 3.1 | bad | 9 | 0.007937 | **differ** |" in markdown
    params_raw["seeds"] = [0]
    html = render(lab_from_raw(params_raw), tmp_path / "figures1").html
    assert "One seed per variant: these numbers are demonstrations, and differences between variants cannot be " \
           "judged." in html and 'id="differences"' not in html


def test_each_variant_shows_what_actually_trained(report_project):
    """Null learning rates, betas and critic steps resolve to the loss's published values: the page says which."""
    html = (report_project / "reports/index.html").read_text()
    ring = html.split('id="ring">', 1)[1].split("</section>", 1)[0]
    for setting in ("loss=wgan_gp", "optimizer=adam", "lr_g=0.0001", "lr_d=0.0001", "betas=(0.0, 0.9)", "d_steps=5"):
        assert f"<code>{setting}</code>" in ring, setting
    cgan = html.split('id="cgan">', 1)[1].split("</section>", 1)[0]
    assert "<code>lr_g=0.0002</code>" in cgan and "<code>betas=(0.5, 0.999)</code>" in cgan
    markdown = (report_project / "reports/report.md").read_text()
    assert "**ring** trained with `loss=wgan_gp` `arch=toy` `optimizer=adam` `lr_g=0.0001`" in markdown


def test_a_dropped_shared_trick_is_noted_on_the_variant(tmp_path, monkeypatch, params_raw):

    from pipeline.report.render import render

    params_raw["train"]["label_smoothing"] = 0.1
    params_raw["variants"] = {"ns": {}, "critic": {"loss": "wgan_gp"}}
    monkeypatch.chdir(tmp_path)
    save_prepared(fake_prepared("mnist5k", 1), paths.prepared_dir("mnist5k"))
    html = render(lab_from_raw(params_raw), tmp_path / "figures").html
    critic = html.split('id="critic">', 1)[1].split("</section>", 1)[0]
    assert "Note: train.label_smoothing=0.1 from the shared recipe does not apply to loss &#39;wgan_gp&#39;" in critic
    assert "<code>label_smoothing=0.0</code>" in critic
    assert "<code>label_smoothing=0.1</code>" in html.split('id="ns">', 1)[1].split("</section>", 1)[0]


PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', images.filter(i => !i.complete || i.naturalWidth === 0).length);
  const tables = Array.from(document.querySelectorAll('table.metrics'));
  document.body.setAttribute('data-metrics-right', Math.max(...tables.map(t => t.getBoundingClientRect().right)));
});
</script>"""


def test_report_renders_in_headless_chromium_without_broken_images(report_project):
    flags = chromium_command(report_project / "chrome-profile")
    page = report_project / "probe.html"
    page.write_text((report_project / "reports/index.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([*flags, "--window-size=1400,1000", "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken="(\d+)"', dom)
    assert images and broken, dom[:500]
    assert int(images.group(1)) >= 16 and int(broken.group(1)) == 0
    right = re.search(r'data-metrics-right="([\d.]+)"', dom)  # the metrics tables end inside a 1,400-pixel page
    assert right and 0 < float(right.group(1)) <= 1400, right
    shot = report_project / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", (report_project / "reports/index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000  # a real page, not a blank one


def test_scatter_and_many_mode_histogram(tmp_path):
    from PIL import Image

    from pipeline.data.sources import ring_modes, sample_mixture
    from pipeline.figures import plots

    ring = prepare_dataset("ring8", DataConfig())
    points, _ = sample_mixture(ring_modes(), 0.01, 500, seed=3)
    plots.scatter_points(points, ring, tmp_path / "scatter.png")
    assert Image.open(tmp_path / "scatter.png").size[0] > 300
    hist = {"class_names": [f"{i:03d}" for i in range(1000)], "generated": [1] * 10 + [0] * 990, "real": [3] * 1000}
    assert plots.histogram_plot(hist, "stacked", tmp_path / "hist.png")
    assert Image.open(tmp_path / "hist.png").size[0] > 300
    assert not plots.histogram_plot({"generated": []}, "none", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_every_fid_is_printed_with_its_protocol(report_project):
    html = (report_project / "reports/index.html").read_text()
    table = html.split('<table id="protocol">', 1)[1].split("</table>", 1)[0]
    assert "<td>cgan</td><td>classifier</td>" in table and "<code>0123456789ab</code>" in table
    assert "500 generated / 500 real" in table and "mnist5k train split" in table and "none (1x28x28" in table
    markdown = (report_project / "reports/report.md").read_text()
    assert "| cgan | classifier | the lab's classifier (models/classifier), 128-d penultimate layer |" in markdown


def published_project(tmp_path, params_raw, reduced, tables=("pacgan_ring8",)):
    save_prepared(prepare_dataset("ring8", DataConfig()), paths.prepared_dir("ring8"))
    write_json({"ring8": {"available": False, "reason": "2D points"}}, paths.CLASSIFIER_METRICS)
    for name, modes in (("gan", [5, 6]), ("pacgan4", [8, 8])):
        for seed in (0, 1):
            write_variant(name, "points", seed)
            write_json({"n_samples": 2500, "modes_captured": modes[seed], "high_quality_frac": 0.9, "reverse_kl": 0.5},
                       paths.metrics_path(paths.run_name(name, seed)))
    params_raw.update(dataset="ring8", arch="toy", seeds=[0, 1])
    params_raw["report"].update(compare_with=list(tables), reduced=reduced)
    params_raw["variants"] = {"gan": {}, "pacgan4": {"train": {"pac": 4}}}
    (tmp_path / "params.yaml").write_text(__import__("yaml").safe_dump(params_raw, sort_keys=False))
    from stages.report import main

    main()
    return (tmp_path / "reports/index.html").read_text(), (tmp_path / "reports/report.md").read_text()


@pytest.mark.parametrize("reduced", [None, "3,000 steps instead of 400,000"])
def test_published_numbers_stand_beside_the_lab_and_say_when_settings_differ(tmp_path, monkeypatch, params_raw,
                                                                              reduced):
    """`report.compare_with`: the paper's table beside the variants it names, high quality in percent
    as published; a reduced study's published numbers are labelled as coming from other settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_LAB_TRACKING", "off")
    html, markdown = published_project(tmp_path, params_raw, reduced)
    table = html.split('<table class="published">', 1)[1].split("</table>", 1)[0]
    # the lab's mean ± sd over its 2 seeds beside the paper's mean of 10 trials
    assert "<td>gan</td><td>2</td><td>5.5 ± 0.71</td><td>6.3" in table
    assert "<td>pacgan4</td><td>2</td><td>8 ± 0</td><td>7.8" in table
    assert "<td>90 ± 0</td><td>98.2" in table  # 0.9 of the samples high quality: 90%, beside PacGAN's 98.2%
    assert "PacGAN (Lin et al. 2018), Table 1" in html
    if reduced:
        assert "Reduced settings, not the published protocol:</strong> 3,000 steps instead of 400,000" in html
        assert table.count("(published settings)") == 6  # every published number, 2 variants x 3 metrics
        assert "**Reduced settings, not the published protocol:** 3,000 steps" in markdown
    else:
        assert "Reduced settings" not in html and "These variants train at the paper's settings" in html
    assert "| gan | 2 | 5.5 ± 0.71 | 6.3 | 90 ± 0 | 98.2 | 0.5 ± 0 | 0.45 |" in markdown


def test_unknown_published_table_is_a_clear_error(tmp_path, monkeypatch, params_raw):
    from pipeline.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_LAB_TRACKING", "off")
    with pytest.raises(ConfigError, match="report.compare_with: unknown published table 'pacgan_table9'; "
                                          "valid published tables: pacgan_ring8, pacgan_grid25"):
        published_project(tmp_path, params_raw, None, tables=["pacgan_table9"])
    assert not (tmp_path / "reports/index.html").exists()  # nothing half-written
    from pipeline import studies

    with pytest.raises(ConfigError, match="report.compare_with: unknown published table 'pacgan_table9'"):
        studies.apply_study(params_raw, {"report": {"compare_with": ["pacgan_table9"]}, "variants": {"a": {}}})


def test_every_kind_of_data_has_a_sample_figure_and_kinds_import_no_report_code():
    """How a kind is shown lives with the report (an edit there never reruns training), and every
    registered kind has its picture."""
    import subprocess
    import sys

    from pipeline.kinds import KINDS
    from pipeline.figures.kinds import SAMPLE_FIGURES, report_note

    assert set(KINDS.names()) <= set(SAMPLE_FIGURES.names())
    code = "import sys, pipeline.kinds; print(sorted(m for m in sys.modules if m.startswith('pipeline.report')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    stacked = type("P", (), {"info": {"stacked_from": "mnist5k"}})()
    assert "not comparable" in report_note("stacked", stacked)
    assert report_note("image", stacked) is None


def test_best_values_rank_variants_only_within_their_task():
    """A translator's FID (against the true test images) is not a generator's: bold never crosses tasks."""
    from types import SimpleNamespace

    from pipeline.report.render import best_values

    def section(task, fid):
        return SimpleNamespace(task=task, metrics={"fid_classifier": {"mean": fid}})

    sections = [section("generate", 18.0), section("generate", 30.0), section("translate", 48.0),
                section("translate", 54.0), section("cycle", 50.0)]
    best = best_values(sections, ["fid_classifier"])
    assert best == {"generate": {"fid_classifier": 18.0}, "translate": {"fid_classifier": 48.0}, "cycle": {}}


def test_the_resolved_line_shows_the_tasks_own_keys_and_no_other_tasks(params_raw):
    from pipeline.report.render import resolved_line

    raw = {**params_raw, "variants": {"dcgan": {}, "semi": {"task": "semi", "data": {"labels_per_class": 10}},
                                      "sr4": {"task": "translate", "data": {"translate": "sr4"}}}}
    lab = lab_from_raw(raw)
    dcgan, semi, sr4 = (resolved_line(lab.variants[n].recipe) for n in ("dcgan", "semi", "sr4"))
    assert dcgan["pac"] == 1 and dcgan["ema"] == 0.0 and dcgan["conditional"] is False
    assert not {"pac", "ema", "unroll_steps", "minibatch_std", "conditional"} & (set(semi) | set(sr4))
    assert semi["data.labels_per_class"] == 10 and semi["g_objective"] == "feature_matching"
    assert sr4["data.translate"] == "sr4" and sr4["translate.l1_weight"] == 100.0 and sr4["arch"] == "unet_patchgan"
