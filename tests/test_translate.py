"""Task translate (pix2pix): the problems' data construction, the U-Net and PatchGAN shapes, what the
reconstruction weight and `loss: none` do, the metrics on hand-made inputs, training and resuming, and
the configuration's clear errors."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import yaml
from conftest import REPO, Crash, CrashingTracker, image_data, raw_recipe

from pipeline.errors import ConfigError
from pipeline.losses import LOSSES
from pipeline.tasks import TASKS
from pipeline.tracking import NullTracker
from pipeline.metrics import translation as tm
from pipeline.models.unet import PatchGAN, UNet
from pipeline.tasks.translate.problems import PROBLEMS, edges, inpaint, sr4
from pipeline.tasks import train
from pipeline.tasks.translate.train import HeldOutCheck, Translator, generator_loss
from pipeline.variants import lab_from_raw, resolve


def build(recipe, data, device, task="translate"):
    """A new run of the task, as `pipeline.tasks.train` builds it."""
    from pipeline.distributed import World

    return TASKS.get(task).build(recipe, data, device, World())


def translate_recipe(**overrides):
    """A tiny translate recipe, resolved as a variant that sets these keys itself."""
    train = overrides.pop("train", {})
    tr = overrides.pop("translate", {})
    problem = overrides.pop("problem", "sr4")
    recipe = raw_recipe(task="translate", train={"eval_every": 2, "eval_samples": 16, **train}, **overrides)
    recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, translate=problem),
                                 translate=dataclasses.replace(recipe.translate, **tr))
    return resolve(recipe)[0]


# ---- the problems ------------------------------------------------------------------------------


def test_sr4_input_is_the_4x4_block_means_shown_at_full_size():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    out = sr4(x)
    assert out.shape == x.shape
    for i, j in ((0, 0), (3, 5), (6, 6)):
        block = x[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4]
        expected = block.mean(dim=(2, 3), keepdim=True).expand_as(block)
        assert torch.allclose(out[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4], expected, atol=1e-6)
    with pytest.raises(ConfigError, match="divisible by 4"):
        sr4(torch.zeros(1, 1, 30, 30))


def test_inpaint_greys_out_the_bottom_half_and_keeps_the_top():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    out = inpaint(x)
    assert torch.equal(out[..., :14, :], x[..., :14, :])
    assert torch.equal(out[..., 14:, :], torch.zeros(3, 1, 14, 28))
    assert not torch.equal(out, x) and torch.equal(inpaint(x), out)  # a copy, deterministic


def test_edges_are_dark_on_flat_regions_and_bright_on_a_step():
    x = -torch.ones(1, 1, 28, 28)
    x[..., :, 14:] = 1.0  # a black-to-white step between columns 13 and 14
    out = edges(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.all(out[..., :, :12] == -1) and torch.all(out[..., :, 16:] == -1)   # flat: no edge
    assert torch.all(out[..., :, 13:15] == 1)                                         # the step: full edge
    assert torch.all(edges(-torch.ones(2, 1, 28, 28)) == -1)


def test_every_registered_problem_keeps_the_shape_and_range():
    x = image_data(n=8).x_train
    for name in PROBLEMS.names():
        out = PROBLEMS.get(name).degrade(x)
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1 and not torch.equal(out, x), name


# ---- the networks --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_unet_and_patchgan_shapes(channels):
    g, d = UNet(channels, width=8), PatchGAN(channels, width=8)
    x = torch.rand(4, channels, 28, 28) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert d(x, y).shape == (4, 1, 7, 7)  # one logit per patch
    # D judges the pair: the same output beside another input is judged differently
    assert not torch.allclose(d(x, y), d(torch.flip(x, [0]), y))


def test_unet_dropout_is_its_noise_at_test_time_and_zero_dropout_is_deterministic():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    noisy, plain = UNet(1, 8, dropout=0.5).eval(), UNet(1, 8, dropout=0.0).eval()
    assert not torch.equal(noisy(x), noisy(x))  # eval mode, still two different answers
    assert torch.equal(plain(x), plain(x))


# ---- the objective -----------------------------------------------------------------------------


def test_loss_none_trains_no_discriminator_and_g_minimises_the_reconstruction_alone():
    recipe = translate_recipe(loss="none", translate={"l1_weight": 3.0})
    tr = build(recipe, image_data(), torch.device("cpu"))
    assert tr.discriminator is None and tr.opt_d is None
    source, target = torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28) * 0.5
    output = tr.generator(source).detach()
    total, terms = generator_loss(TASKS.get("translate").loss("none"), None, source, output, target, recipe)
    assert set(terms) == {"loss_rec"}
    assert math.isclose(float(total), 3.0 * float((output - target).abs().mean().detach()), rel_tol=1e-6)


@pytest.mark.parametrize("reconstruction", ["l1", "l2"])
def test_l1_weight_scales_the_reconstruction_beside_the_adversarial_term(reconstruction):
    recipe = translate_recipe(loss="ns", translate={"l1_weight": 100.0, "reconstruction": reconstruction})
    tr = build(recipe, image_data(), torch.device("cpu"))
    source, target = torch.rand(2, 1, 28, 28) * 2 - 1, torch.rand(2, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        output = tr.generator(source)
    total, terms = generator_loss(LOSSES.get("ns"), tr.discriminator, source, output, target, recipe)
    diff = output - target
    rec = diff.abs().mean() if reconstruction == "l1" else diff.square().mean()
    with torch.no_grad():
        adv = LOSSES.get("ns").generator(tr.discriminator(source, output))
    assert math.isclose(float(terms["loss_rec"]), float(rec), rel_tol=1e-5)
    assert math.isclose(float(terms["loss_adv"]), float(adv), rel_tol=1e-5)
    assert math.isclose(float(total), 100.0 * float(rec) + float(adv), rel_tol=1e-5)
    # l1_weight 0: the adversarial loss alone (pix2pix's "cGAN" column)
    zero = dataclasses.replace(recipe, translate=dataclasses.replace(recipe.translate, l1_weight=0.0))
    total0, _ = generator_loss(LOSSES.get("ns"), tr.discriminator, source, output, target, zero)
    assert math.isclose(float(total0), float(adv), rel_tol=1e-5)


# ---- the metrics, on hand-made inputs -------------------------------------------------------------


def test_fidelity_metrics_on_known_images():
    target = -torch.ones(4, 1, 28, 28)
    output = target.clone()
    output[..., :14] = 0.0  # half the pixels off by 0.5 on the [0, 1] scale
    assert math.isclose(tm.l1_error(output, target), 0.25, rel_tol=1e-6)
    assert math.isclose(tm.psnr(output, target), 10 * math.log10(1 / 0.125), rel_tol=1e-6)  # MSE 0.125
    assert tm.psnr(target, target) == tm.PSNR_CAP
    assert math.isclose(tm.ssim(target + 0.5, target + 0.5), 1.0, rel_tol=1e-5)
    assert tm.ssim(output, target) < 0.9


def test_sharpness_falls_when_an_image_is_blurred():
    x = (torch.rand(8, 1, 28, 28) > 0.5).float() * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    assert tm.gradient_magnitude(blurred) < 0.6 * tm.gradient_magnitude(x)
    assert tm.gradient_magnitude(torch.zeros(2, 1, 28, 28)) == 0.0


class Oracle(torch.nn.Module):
    """A stand-in classifier: class 1 when the top-left pixel is bright, else 0; features = two pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, 0, :2, 0].double() + torch.randn(len(x), 2, generator=torch.Generator().manual_seed(0)) * 1e-3

    def forward(self, x):
        return torch.stack([-x[:, 0, 0, 0], x[:, 0, 0, 0]], dim=1)


def test_translation_metrics_accuracy_and_per_input_diversity():
    n = 40
    targets = -torch.ones(n, 1, 28, 28)
    labels = torch.arange(n) % 2
    targets[labels == 1, 0, 0, 0] = 1.0
    right = targets.clone()
    wrong = targets.clone()
    wrong[:, 0, 0, 0] = 1.0  # every output reads as class 1: half right, and a different distribution
    same = torch.stack([right, right])
    out = tm.translation_metrics(same, torch.zeros_like(targets), targets, labels, Oracle())
    assert out["accuracy"] == 1.0 and out["accuracy_real"] == 1.0 and out["accuracy_input"] == 0.5
    assert math.isclose(out["diversity_ssim_per_input"], 1.0, rel_tol=1e-5)  # identical outputs: no diversity
    assert out["n_inputs"] == n and out["psnr"] == tm.PSNR_CAP and out["l1"] == 0.0
    assert out["fid_classifier"] < 1e-3
    collapsed = tm.translation_metrics(torch.stack([wrong, right]), torch.zeros_like(targets), targets, labels, Oracle())
    assert collapsed["accuracy"] == 0.5 and collapsed["diversity_ssim_per_input"] < 1.0 and collapsed["fid_classifier"] > 0.5


# ---- training --------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["none", "ns", "lsgan", "hinge", "wgan_gp", "wgan"])
def test_every_loss_trains_a_translator_with_finite_losses(loss):
    recipe = translate_recipe(loss=loss, train={"d_steps": 1, "d_steps_warmup": 0} if "wgan" in loss else {})
    data, tracker = image_data(), NullTracker()
    tr = train(recipe, data, tracker=tracker, checker=HeldOutCheck(recipe, data, None, torch.device("cpu")),
               progress=False)
    assert tracker.images == [("translations", 2), ("translations", 4)]  # input | output | truth, at each check
    assert isinstance(tr, Translator) and tr.step == recipe.train.steps
    keys = {"loss_g", "loss_rec"} | ({"loss_d", "loss_adv"} if loss != "none" else set())
    assert keys <= set(tr.log_rows[-1]) and all(math.isfinite(v) for v in tr.log_rows[-1].values())
    assert tr.d_updates == (0 if loss == "none" else recipe.train.steps)
    assert [r["step"] for r in tr.eval_rows] == [2, 4] and {"l1", "psnr"} <= set(tr.eval_rows[-1])


def test_a_killed_translator_resumes_to_the_same_weights(tmp_path):
    recipe = translate_recipe(loss="ns", train={"steps": 4, "checkpoint_every": 2, "log_every": 1})
    data = image_data()
    straight = train(recipe, data, progress=False)
    state = tmp_path / "last.pt"
    with pytest.raises(Crash):
        train(recipe, data, tracker=CrashingTracker(at_step=3), state_path=state, progress=False)
    assert state.exists()
    resumed = train(recipe, data, state_path=state, progress=False)
    for a, b in zip(straight.generator.parameters(), resumed.generator.parameters()):
        assert torch.equal(a, b)
    assert [r["step"] for r in resumed.log_rows] == [1, 2, 3, 4]


# ---- configuration ---------------------------------------------------------------------------------


def _params(**changes):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in changes.items():
        raw[key] = value
    return raw


def test_a_translate_only_key_on_a_generate_variant_is_an_error_naming_it():
    raw = _params()
    raw["variants"]["dcgan"] = {"translate": {"l1_weight": 10.0}}
    with pytest.raises(ConfigError, match=r"variants\.dcgan\.translate\.l1_weight: applies to task translate only"):
        lab_from_raw(raw)
    with pytest.raises(ConfigError, match=r"^translate\.l1_weight: applies to task translate only, and no variant"):
        lab_from_raw(_params(translate={"l1_weight": 10.0}))
    with pytest.raises(ConfigError, match=r"variants\.t\.train\.pac: applies to task generate or voxel only"):
        lab_from_raw({**_params(), "variants": {"t": {"task": "translate", "data": {"translate": "sr4"},
                                                       "train": {"pac": 2}}}})
    with pytest.raises(ConfigError, match=r"data\.translate: task translate needs a problem: sr4 \| inpaint \| edges"):
        lab_from_raw({**_params(), "variants": {"t": {"task": "translate"}}})
    with pytest.raises(ConfigError, match=r"unknown translation problem 'sr8'; valid translation problems: sr4, "):
        lab_from_raw({**_params(), "variants": {"t": {"task": "translate", "data": {"translate": "sr8"}}}})
    with pytest.raises(ConfigError, match=r"^loss: unknown loss 'none'; valid losses: minimax"):
        lab_from_raw(_params(loss="none"))  # the reconstruction-only baseline is translate's
    with pytest.raises(ConfigError, match=r"^task: unknown task 'segment'; valid tasks: generate, translate"):
        lab_from_raw(_params(task="segment"))


def test_a_shared_task_switch_turns_every_variant_into_a_translator_with_notes():
    """`dvc exp run -S task=translate -S data.translate=inpaint -S loss=lsgan` on the shipped variants."""
    raw = _params(task="translate", loss="lsgan")
    raw["data"] = {**raw["data"], "translate": "inpaint"}
    lab = lab_from_raw(copy.deepcopy(raw))
    assert {v.recipe.task for v in lab.variants.values()} == {"translate"}
    assert {v.recipe.arch for v in lab.variants.values()} == {"unet_patchgan"}
    assert lab.variants["dcgan"].recipe.loss == "lsgan" and lab.variants["vanilla"].recipe.loss == "minimax"
    assert lab.variants["cdcgan"].recipe.conditional is False
    assert any("conditional=True applies to task generate or voxel only" in n for n in lab.variants["cdcgan"].notes)


# ---- task cycle (CycleGAN) ---------------------------------------------------------------------------


def cycle_recipe(**overrides):
    recipe = raw_recipe(task="cycle", loss=overrides.pop("loss", "lsgan"),
                        train={"eval_every": 2, "eval_samples": 16, **overrides.pop("train", {})})
    recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, cycle_with="digits"),
                                 cycle=dataclasses.replace(recipe.cycle, **overrides))
    return resolve(recipe)[0]


def two_domains():
    from pipeline.tasks.cycle.translations import domains

    a = image_data(n=48, size=28, seed=0)
    b = image_data(n=48, size=8, seed=1)
    b.name = "small"
    return domains(a, b)


def test_cycle_domains_are_resized_to_the_first_domains_size_and_channels_must_agree():
    from pipeline.tasks.cycle.translations import domains

    d = two_domains()
    assert d.b_train.shape[1:] == d.a_train.shape[1:] == (1, 28, 28) and d.b_native == (1, 8, 8)
    assert d.b_train.min() >= -1 and d.b_train.max() <= 1
    with pytest.raises(ConfigError, match="the same number of channels"):
        domains(image_data(size=28), image_data(size=8, channels=3))


@pytest.mark.parametrize("identity_weight", [5.0, 0.0])
def test_cycle_generator_loss_is_gan_plus_weighted_cycle_and_identity_terms(identity_weight):
    from pipeline.tasks.cycle.train import generator_loss

    recipe = cycle_recipe(cycle_weight=10.0, identity_weight=identity_weight)
    m = build(recipe, two_domains(), torch.device("cpu"), "cycle")
    a, b = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    loss = LOSSES.get("lsgan")
    total, terms, fake_b, fake_a = generator_loss(loss, m, a, b, recipe)
    with torch.no_grad():  # the same calls by hand (no dropout; instance norm: the same outputs); CycleGAN's LSGAN G
        adv = (m.d_b(m.g_ab(a)) - 1).pow(2).mean() + (m.d_a(m.g_ba(b)) - 1).pow(2).mean()  # term: MSE(D, 1), no 1/2
        cyc = (m.g_ba(m.g_ab(a)) - a).abs().mean() + (m.g_ab(m.g_ba(b)) - b).abs().mean()
        idt = (m.g_ab(b) - b).abs().mean() + (m.g_ba(a) - a).abs().mean()
    assert math.isclose(float(terms["loss_adv"]), float(adv), rel_tol=1e-5)
    assert math.isclose(float(terms["loss_cycle"]), float(cyc), rel_tol=1e-5)
    assert math.isclose(float(total.detach()), float(adv) + 10.0 * float(cyc) + identity_weight * float(idt), rel_tol=1e-5)
    assert ("loss_identity" in terms) == bool(identity_weight) and fake_b.shape == a.shape == fake_a.shape


def test_image_to_image_losses_are_weighed_as_the_reference_code():
    """pix2pix and CycleGAN (junyanz): D's loss (real + fake) x 0.5; G's term the GANLoss itself, so LSGAN's G term is
    MSE(D(G(x)), 1) where the LSGAN paper (and the generate task) halves it."""
    from pipeline.losses import image_to_image_terms

    real, fake = torch.tensor([0.5, 1.5, 2.0]), torch.tensor([-0.5, 0.25, 1.0])
    d_lsgan, g_lsgan = image_to_image_terms(LOSSES.get("lsgan"))
    assert d_lsgan(real, fake).item() == pytest.approx(0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean()).item())
    assert g_lsgan(fake).item() == pytest.approx((fake - 1).pow(2).mean().item())
    assert g_lsgan(fake).item() == pytest.approx(2 * LOSSES.get("lsgan").generator(fake).item())
    d_ns, g_ns = image_to_image_terms(LOSSES.get("ns"))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert d_ns(real, fake).item() == pytest.approx(0.5 * (bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))).item())
    assert g_ns(fake).item() == pytest.approx(bce(fake, torch.ones(3)).item())


def test_the_image_to_image_networks_are_initialised_and_normalised_as_the_reference():
    """init_weights(net, 'normal', 0.02): conv weights N(0, 0.02), zero biases, batch-norm scales N(1, 0.02); CycleGAN's
    networks use instance norm (per image, no running statistics)."""

    torch.manual_seed(0)
    g = UNet(1, 64)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05) and abs(weights.mean().item()) < 1e-3
    assert all(not torch.count_nonzero(m.bias) for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    scales = torch.cat([m.weight for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert (scales - 1).abs().max() < 0.1 and scales.std() > 0.01
    m = build(cycle_recipe(), two_domains(), torch.device("cpu"), "cycle")
    for net in (m.g_ab, m.g_ba, m.d_a, m.d_b):
        kinds = {type(layer).__name__ for layer in net.modules()}
        assert "InstanceNorm2d" in kinds and "BatchNorm2d" not in kinds
    pix2pix_d = build(translate_recipe(loss="ns"), image_data(), torch.device("cpu")).discriminator
    assert type(pix2pix_d.net[3]).__name__ == "BatchNorm2d"  # pix2pix keeps batch norm


def test_the_image_pool_keeps_fifty_past_fakes_and_swaps_half_of_the_new_ones():
    from pipeline.tasks.cycle.train import ImagePool

    pool, gen = ImagePool(4), torch.Generator().manual_seed(0)
    first = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert torch.equal(pool.query(first, gen), first) and len(pool.images) == 3  # filling: returned as they are
    out = pool.query(torch.full((40, 1, 1, 1), 100.0), gen)
    assert len(pool.images) == 4 and out.shape == (40, 1, 1, 1)
    swapped = int((out < 100).sum())
    assert 1 <= swapped <= 4 and int((out == 100).sum()) > 20  # about half the draws swap, only old ones come back
    assert torch.equal(ImagePool(0).query(first, gen), first)  # pool_size 0: the latest fakes only


def test_the_learning_rate_is_constant_then_falls_linearly_over_the_second_half():
    from pipeline.optim import scheduled_lr

    rates = [scheduled_lr(1.0, step, 10, "linear_decay") for step in range(1, 11)]
    assert rates[:5] == [1.0] * 5 and rates[5] == pytest.approx(5 / 6) and rates[-1] == pytest.approx(1 / 6)
    assert all(a > b for a, b in zip(rates[4:], rates[5:]))
    assert scheduled_lr(0.5, 9, 10, "constant") == 0.5
    tr = train(translate_recipe(loss="ns", train={"steps": 4, "lr_g": 1e-3, "lr_d": 1e-3}), image_data(), progress=False)
    assert translate_recipe().train.lr_schedule == "linear_decay"  # the task's default, as pix2pix trains
    assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 / 3) == tr.opt_d.param_groups[0]["lr"]


def test_pix2pix_updates_d_and_g_on_one_batch_and_one_output(monkeypatch):
    """One G forward a step: D's update sees it detached, G's update the same output, on the same batch."""
    calls, d_inputs = [], []
    recipe = translate_recipe(loss="ns", train={"steps": 3})
    tr = build(recipe, image_data(), torch.device("cpu"))
    tr.generator.register_forward_hook(lambda m, args, out: calls.append(out.detach().clone()))
    tr.discriminator.register_forward_hook(lambda m, args, out: d_inputs.append(args[1].detach().clone()))
    import pipeline.tasks.translate.train as translate_train

    monkeypatch.setattr(translate_train, "build", lambda *a, **k: tr)
    train(recipe, image_data(), progress=False)
    assert len(calls) == 3  # one G forward per step (the check is off: no held-out checker)
    for step in range(3):  # D's real, D's fake, G's fake: the one output twice
        real, fake, g_fake = d_inputs[3 * step:3 * step + 3]
        assert torch.equal(fake, calls[step]) and torch.equal(g_fake, calls[step]) and not torch.equal(real, fake)


def test_cycle_metrics_of_identity_generators():
    from pipeline.tasks.cycle.translations import Translations, cycle_metrics

    n = 40
    a = -torch.ones(n, 1, 28, 28)
    labels = torch.arange(n) % 2
    a[labels == 1, 0, 0, 0] = 1.0
    b = a.clone()
    same = Translations(ab=a.clone(), ba=b.clone(), aba=a.clone(), bab=b.clone())
    out = cycle_metrics(same, a, b, labels, labels, (Oracle(), Oracle()), (1, 28, 28))
    assert out["cycle_l1_a"] == 0.0 and out["cycle_l1_b"] == 0.0
    assert out["accuracy_ab"] == out["accuracy_ab_untranslated"] == 1.0 and out["fid_classifier_ab"] < 1e-3
    broken = Translations(ab=-torch.ones_like(a), ba=b.clone(), aba=torch.zeros_like(a), bab=b.clone())
    out = cycle_metrics(broken, a, b, labels, labels, (Oracle(), Oracle()), (1, 28, 28))
    assert out["accuracy_ab"] == 0.5 and math.isclose(out["cycle_l1_a"], 0.5, rel_tol=1e-6)


def test_a_cyclegan_trains_with_finite_losses_and_resumes_to_the_same_weights(tmp_path):
    from pipeline.tasks.cycle.train import CycleCheck

    recipe = cycle_recipe(train={"steps": 4, "checkpoint_every": 2, "log_every": 1})
    d = two_domains()
    tracker = NullTracker()
    straight = train(recipe, d, tracker=tracker, checker=CycleCheck(recipe, d, (None, None)), progress=False)
    row = straight.log_rows[-1]
    assert {"loss_g", "loss_adv", "loss_cycle", "loss_identity", "loss_d", "loss_d_a", "loss_d_b"} <= set(row)
    assert all(math.isfinite(v) for v in row.values()) and straight.d_updates == 4
    assert {"cycle_l1_a", "cycle_l1_b"} <= set(straight.eval_rows[-1])
    assert tracker.images == [("translations", 2), ("translations", 4)]
    state = tmp_path / "last.pt"
    with pytest.raises(Crash):
        train(recipe, d, tracker=CrashingTracker(at_step=3), state_path=state, progress=False)
    resumed = train(recipe, d, state_path=state, progress=False)
    for name in ("g_ab", "g_ba", "d_a", "d_b"):  # all four networks, and the pools of past fakes
        for a, b in zip(getattr(straight, name).parameters(), getattr(resumed, name).parameters()):
            assert torch.equal(a, b), name
    for name in ("pool_a", "pool_b"):
        assert torch.equal(getattr(straight, name).images, getattr(resumed, name).images), name


def test_cycle_configuration_errors_and_its_second_domain_is_prepared():
    base = _params()
    cyc = {"task": "cycle", "loss": "lsgan", "data": {"cycle_with": "digits"}}
    lab = lab_from_raw({**base, "variants": {"dcgan": {}, "cyc": cyc}})
    assert lab.datasets() == ["mnist5k", "digits"]  # prepared, and given a classifier
    with pytest.raises(ConfigError, match=r"variants\.c\.data\.cycle_with: task cycle needs a second image dataset"):
        lab_from_raw({**base, "variants": {"c": {"task": "cycle"}}})
    with pytest.raises(ConfigError, match=r"domain B must be another dataset than domain A \('mnist5k'\)"):
        lab_from_raw({**base, "variants": {"c": {"task": "cycle", "data": {"cycle_with": "mnist5k"}}}})
    with pytest.raises(ConfigError, match=r"variants\.c\.data\.cycle_with: unknown dataset 'svhn'"):
        lab_from_raw({**base, "variants": {"c": {"task": "cycle", "data": {"cycle_with": "svhn"}}}})
    with pytest.raises(ConfigError, match=r"variants\.c\.translate\.l1_weight: applies to task translate only"):
        lab_from_raw({**base, "variants": {"c": {**cyc, "translate": {"l1_weight": 1.0}}}})


def test_translator_checkpoints_load_as_translators_and_are_refused_as_generators(tmp_path, monkeypatch):
    from pipeline import paths
    from pipeline.checkpoint import load_generator
    from pipeline.errors import CheckpointError
    from pipeline.tasks.translate.task import load_translator, save_translator, translate

    monkeypatch.chdir(tmp_path)
    recipe = translate_recipe(loss="ns")
    tr = build(recipe, image_data(), torch.device("cpu"))
    save_translator("t/seed0", tr, recipe.to_dict(), "t", (1, 28, 28), [str(i) for i in range(10)])
    generator, header = load_translator(paths.generator_path("t/seed0"))
    assert header["problem"] == "sr4" and header["data_shape"] == [1, 28, 28]
    for a, b in zip(generator.state_dict().values(), tr.generator.state_dict().values()):
        assert torch.equal(a, b)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    out = translate(generator, x, 3, seed=0)
    assert out.shape == (3, 5, 1, 28, 28) and torch.equal(out, translate(generator, x, 3, seed=0))
    assert not torch.equal(out[0], out[1])  # dropout: three different answers, reproducible from the seed
    with pytest.raises(CheckpointError, match=r"is a translator \(task translate\), not a generator of images from "
                                              r"noise; use `gan translate"):
        load_generator(paths.generator_path("t/seed0"))


@pytest.mark.parametrize("loader, what", [("pipeline.tasks.translate.task:load_translator", "translator"),
                                          ("pipeline.tasks.semi.task:load_semi", "semi-supervised GAN")])
def test_an_unreadable_or_missing_task_checkpoint_is_one_error_that_says_how_to_get_a_good_one(tmp_path, loader, what):
    import importlib

    from pipeline.errors import CheckpointError

    module, name = loader.split(":")
    load = getattr(importlib.import_module(module), name)
    broken = tmp_path / "checkpoint.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=rf"checkpoint.pt is not a readable {what} checkpoint \(.*\); restore it "
                                              r"with `dvc checkout` or retrain with `dvc repro -f train@"):
        load(broken)
    with pytest.raises(CheckpointError, match="ghost.pt does not exist"):
        load(tmp_path / "ghost.pt")
