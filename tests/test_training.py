"""Training: a few steps of every loss/arch on tiny data; determinism; resume; divergence."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import Crash, CrashingTracker, image_data, point_data, raw_recipe, tiny_recipe

from pipeline.device import resolve_device
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.losses import LOSSES
from pipeline.models import build_models
from pipeline.tasks import train
from pipeline.tasks.generate import GenerateCheck
from pipeline.tasks.generate.setup import model_spec
from pipeline.tracking import NullTracker


def weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_every_loss_trains_with_finite_losses_and_changed_weights(images, loss, arch):
    recipe = tiny_recipe(loss=loss, arch=arch, train={"d_steps": 2} if "wgan" in loss else {})
    torch.manual_seed(recipe.seed)
    initial_g, _ = build_models(arch, model_spec(recipe, images, LOSSES.get(loss)))
    result = train(recipe, images, progress=False)
    assert [row["step"] for row in result.log_rows] == [2, 4]
    for row in result.log_rows:
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values()), row
    assert not torch.allclose(weights(initial_g), weights(result.generator))
    if loss == "wgan_gp":
        assert result.log_rows[-1]["gradient_penalty"] >= 0
    if loss == "wgan":  # weight clipping holds after every critic step
        assert max(p.abs().max().item() for p in result.discriminator.parameters()) <= 0.01 + 1e-7


@pytest.mark.parametrize("options", [
    {"conditional": True},
    {"conditional": True, "loss": "wgan_gp"},
    {"train": {"pac": 2}},
    {"train": {"spectral_norm": True}},
    {"train": {"ema": 0.9}},
    {"train": {"label_smoothing": 0.1}},
    {"train": {"optimizer": "rmsprop"}},
])
def test_training_options(images, options):
    result = train(tiny_recipe(**options), images, progress=False)
    assert len(result.log_rows) == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in result.log_rows[-1].values())


@pytest.mark.parametrize("ramp", ["stylegan2", "num_updates"])
def test_ema_weights_are_the_hand_computed_average_after_3_steps(images, monkeypatch, ramp):
    """EMA(decay d) starts as G's initial weights; the t-th update (t = 0, 1, ...) makes ema = d_t * ema + (1 - d_t) * G
    with StyleGAN2-ADA's d_t = 0.5^(B / min(H, 0.05 t B)), H = B ln 0.5 / ln d the half-life in images (B: the batch),
    or TensorFlow's d_t = min(d, (1 + t) / (10 + t)); buffers are G's own."""
    import math
    from pipeline.tasks.generate import setup as training_setup, steps as training_steps

    decay, seen, initial = 0.5, [], {}
    plain_g_step, plain_setup = training_steps.g_step, training_setup.setup_run

    def recording_setup(*args, **kwargs):
        run = plain_setup(*args, **kwargs)
        initial.update({k: v.detach().clone() for k, v in run.generator.state_dict().items()})
        return run

    def recording_g_step(generator, *args, **kwargs):
        logs = plain_g_step(generator, *args, **kwargs)
        seen.append({k: v.detach().clone() for k, v in generator.state_dict().items()})
        return logs

    monkeypatch.setattr(training_setup, "setup_run", recording_setup)
    monkeypatch.setattr(training_steps, "g_step", recording_g_step)
    result = train(tiny_recipe(train={"ema": decay, "steps": 3, "ema_ramp": ramp}), images, progress=False)
    assert type(result.generator).__name__ == "DCGANGenerator"  # the averaged copy, ready to sample
    if ramp == "num_updates":
        d0, d1, d2 = (min(decay, (1 + t) / (10 + t)) for t in range(3))  # 0.1, 0.18, 0.25: still warming up
    else:
        batch = 16  # conftest's tiny recipe
        half_life = batch * math.log(0.5) / math.log(decay)
        d0, d1, d2 = (0.5 ** (batch / max(min(half_life, 0.05 * t * batch), 1e-8)) for t in range(3))
        assert d0 == 0.0 and 0 < d1 < d2 < 1e-3  # the first updates copy G almost entirely
    p1, p2, p3 = seen
    parameters = dict(result.generator.named_parameters())
    for name, value in result.generator.state_dict().items():
        if name in parameters:
            expected = d2 * (d1 * (d0 * initial[name] + (1 - d0) * p1[name]) + (1 - d1) * p2[name]) + (1 - d2) * p3[name]
            assert torch.allclose(value, expected, atol=1e-6), name
        else:  # batch-norm statistics are copied from G, not averaged
            assert torch.equal(value, p3[name]), name
    assert not torch.allclose(weights(result.generator), torch.cat([p3[n].flatten() for n in parameters]))


@pytest.mark.parametrize("ramp", ["stylegan2", "num_updates"])
def test_ema_warm_up_forgets_the_first_weights_and_copies_buffers(ramp):
    """At decay 0.999 without a warm-up, 1,200 updates leave 30% of the average on the first
    weights; with either warm-up, a weight that is 0 at the first update and 1 for the next 1,199 averages above
    0.95. Batch-norm running statistics are G's own. StyleGAN2-ADA's ramp reaches the decay only once 5% of the images
    seen make the half-life: at batch 64, after 13,863 updates for 0.999."""
    from pipeline.tasks.generate.ema import Ema

    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    torch.nn.init.zeros_(net[0].weight)
    ema = Ema(net, 0.999, batch_size=64, ramp=ramp)
    if ramp == "stylegan2":
        assert ema.current_decay() == 0.0
        ema.updates = 1000
        assert ema.current_decay() == pytest.approx(0.5 ** (1 / 50))  # half-life 0.05 x 64,000 images
        ema.updates = 20_000
        assert ema.current_decay() == pytest.approx(0.999)
        ema.updates = 0
    ema.update(net)
    torch.nn.init.ones_(net[0].weight)
    net(torch.randn(64, 1) * 3)  # moves BN's running statistics
    for _ in range(1199):
        ema.update(net)
    assert ema.module[0].weight.item() > 0.95
    assert torch.equal(ema.module[1].running_var, net[1].running_var)
    assert torch.equal(ema.module[1].running_mean, net[1].running_mean)
    assert not ema.module[0].weight.requires_grad


def _one_step_setup(recipe, data):
    from pipeline.tasks.generate.setup import setup_run as _setup
    from pipeline.tasks.generate.steps import draw_batch, samples_per_step

    run = _setup(recipe, data, LOSSES.get(recipe.loss), torch.device("cpu"))
    batch = draw_batch(data.x_train, data.y_train, samples_per_step(recipe), recipe.train.z_dim,
                       recipe.conditional, run.gen)
    return run, batch


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("loss", ["ns", "wgan_gp", "wgan"])
def test_a_d_step_leaves_g_alone_and_a_g_step_leaves_d_alone(images, loss):
    import contextlib

    from pipeline.tasks.generate.steps import d_step, g_step

    recipe = tiny_recipe(loss=loss)
    run, batch = _one_step_setup(recipe, images)
    g0, d0 = _params(run.generator), _params(run.discriminator)
    d_step(run.generator, run.discriminator, run.opt_d, LOSSES.get(loss), batch, recipe, contextlib.nullcontext,
           run.gen)
    assert all(torch.equal(g0[n], p) for n, p in run.generator.named_parameters())
    assert not all(torch.equal(d0[n], p) for n, p in run.discriminator.named_parameters())
    assert all(p.grad is None for p in run.generator.parameters())  # no gradient leaked into G either
    d1 = _params(run.discriminator)
    d_state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in run.opt_d.state.items()}
    g_step(run.generator, run.discriminator, run.opt_g, LOSSES.get(loss), batch, contextlib.nullcontext, recipe,
           run.opt_d)
    assert all(torch.equal(d1[n], p) for n, p in run.discriminator.named_parameters())
    assert not all(torch.equal(g0[n], p) for n, p in run.generator.named_parameters())
    for p, state in run.opt_d.state.items():  # D's optimizer did not move either
        assert all(torch.equal(v, d_state[id(p)][k]) for k, v in state.items())


def test_pacgan_d_sees_batch_size_packs_of_pac_samples(images, monkeypatch):
    """The PacGAN reference: D judges `batch_size` packs per step, i.e. pac x batch_size samples."""
    from pipeline.tasks.generate import steps as training_steps

    shapes = []
    plain = training_steps.d_step

    def recording(generator, discriminator, opt_d, loss, batch, *args):
        shapes.append((batch.real.shape[0], discriminator(batch.real, batch.y_real).shape[0]))
        return plain(generator, discriminator, opt_d, loss, batch, *args)

    monkeypatch.setattr(training_steps, "d_step", recording)
    train(tiny_recipe(train={"pac": 4, "batch_size": 8, "steps": 2}), images, progress=False)
    assert shapes == [(32, 8), (32, 8)]  # 32 samples, 8 decisions


def test_wasserstein_estimate_only_for_losses_that_estimate_it(images):
    for loss, expected in (("wgan", True), ("wgan_gp", True), ("hinge", False), ("lsgan", False), ("ns", False)):
        recipe = tiny_recipe(loss=loss, train={"steps": 2, "d_steps": 1})
        rows = train(recipe, images, progress=False).log_rows
        assert ("wasserstein" in rows[-1]) is expected, loss


def test_optimizer_and_learning_rate_come_from_the_loss(images):
    from pipeline.tasks.generate.setup import setup_run as _setup

    for loss, kind, lr in (("wgan", torch.optim.RMSprop, 5e-5), ("wgan_gp", torch.optim.Adam, 1e-4),
                           ("ns", torch.optim.Adam, 2e-4)):
        run = _setup(tiny_recipe(loss=loss), images, LOSSES.get(loss), torch.device("cpu"))
        for opt in (run.opt_g, run.opt_d):
            assert type(opt) is kind and opt.param_groups[0]["lr"] == lr, loss


def test_unrolled_gan_with_zero_steps_is_the_plain_step(images):
    """unroll_steps 0 is the plain G step, bit for bit; unroll_steps 3 trains another generator."""
    plain = train(tiny_recipe(train={"steps": 3}), images, progress=False)
    zero = train(tiny_recipe(train={"steps": 3, "unroll_steps": 0}), images, progress=False)
    three = train(tiny_recipe(train={"steps": 3, "unroll_steps": 3}), images, progress=False)
    assert torch.equal(weights(plain.generator), weights(zero.generator))
    assert torch.equal(weights(plain.discriminator), weights(three.discriminator)) is False
    assert not torch.allclose(weights(plain.generator), weights(three.generator))


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_one_look_ahead_step_is_the_optimizers_own_step(images, optimizer):
    """The functional look-ahead reproduces what D's real optimizer would do, state included."""
    import contextlib

    from pipeline.tasks.generate.steps import d_step
    from pipeline.tasks.generate.unrolled import lookahead, snapshot

    recipe = tiny_recipe(loss="ns", train={"optimizer": optimizer, "spectral_norm": True})
    run, batch = _one_step_setup(recipe, images)
    loss = LOSSES.get("ns")
    d_step(run.generator, run.discriminator, run.opt_d, loss, batch, recipe, contextlib.nullcontext, run.gen)
    with torch.no_grad():
        fake = run.generator(batch.z, batch.y_fake)
    d_loss = lambda D: loss.discriminator(D(batch.real, None), D(fake, None), 1.0)  # noqa: E731
    params, _ = lookahead(run.discriminator, snapshot(run.discriminator, run.opt_d), 1, d_loss)
    run.opt_d.zero_grad()  # the real optimizer step on the same batch and fakes
    d_loss(run.discriminator).backward()
    run.opt_d.step()
    for name, p in run.discriminator.named_parameters():
        assert torch.allclose(params[name], p, rtol=1e-4, atol=1e-6), name


def test_unrolled_gan_second_order_term_reaches_the_generator(images):
    """With look-ahead steps, G's gradient includes how D's update depends on G's samples."""
    import contextlib

    from pipeline.tasks.generate.steps import g_step
    from pipeline.tasks.generate.unrolled import snapshot

    grads = {}
    for k in (0, 1):
        recipe = tiny_recipe(arch="mlp", train={"unroll_steps": k})
        run, batch = _one_step_setup(recipe, images)
        run.opt_d.param_groups[0]["lr"] = 0.5  # a large look-ahead step makes the difference obvious
        g_step(run.generator, run.discriminator, run.opt_g, LOSSES.get("ns"), batch, contextlib.nullcontext,
               recipe, snapshot(run.discriminator, run.opt_d))
        grads[k] = torch.cat([p.grad.flatten() for p in run.generator.parameters()])
    assert torch.isfinite(grads[1]).all() and not torch.allclose(grads[0], grads[1])


def test_unrolled_look_ahead_starts_from_d_before_this_iterations_update():
    """Metz et al.: with unroll_steps = 1 G's gradient is that of -L_D at D_1, one differentiable Adam
    step from D as it was *before* this iteration's D update, on that update's batch (the first
    look-ahead step is the D update itself); not two steps from the updated D. Computed by hand."""
    import contextlib
    import copy

    from torch.func import functional_call

    from pipeline.tasks.generate.setup import setup_run as _setup
    from pipeline.tasks.generate.steps import draw_batch, iteration as _step, samples_per_step

    data = point_data()
    recipe = tiny_recipe(dataset="ring8", arch="toy", loss="minimax", train={"unroll_steps": 1, "z_dim": 2})
    loss = LOSSES.get("minimax")
    run = _setup(recipe, data, loss, torch.device("cpu"))
    x = data.x_train
    _step(run, loss, recipe, x, None, contextlib.nullcontext, False, 1)  # Adam's state is no longer empty
    G0, D0 = copy.deepcopy(run.generator), copy.deepcopy(run.discriminator)
    state0 = {n: {k: v.clone() if torch.is_tensor(v) else v for k, v in run.opt_d.state[p].items()}
              for n, p in run.discriminator.named_parameters()}
    gen0 = torch.Generator().set_state(run.gen.get_state())
    _step(run, loss, recipe, x, None, contextlib.nullcontext, False, 1)
    got = torch.cat([p.grad.flatten() for p in run.generator.parameters()])

    batch = draw_batch(x, None, samples_per_step(recipe), recipe.train.z_dim, False, gen0)  # the D step's batch
    fake = G0(batch.z)
    params = {n: p.detach().clone().requires_grad_(True) for n, p in D0.named_parameters()}
    D = lambda ps, v: functional_call(D0, ps, (v,))  # noqa: E731
    l_d = loss.discriminator(D(params, batch.real), D(params, fake), 1.0)
    grads = torch.autograd.grad(l_d, list(params.values()), create_graph=True)
    (beta1, beta2), lr, eps = recipe.train.betas, recipe.train.lr_d, 1e-8
    stepped = {}
    for (n, p), g in zip(params.items(), grads):  # Adam, written out
        st = state0[n]
        t = float(st["step"]) + 1
        m = beta1 * st["exp_avg"] + (1 - beta1) * g
        v = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
        stepped[n] = p - lr * (m / (1 - beta1 ** t)) / ((v / (1 - beta2 ** t)).sqrt() + eps)
    value = -loss.discriminator(D(stepped, batch.real), D(stepped, fake), 1.0)  # G minimises the game's value
    expected = torch.cat([g.flatten() for g in torch.autograd.grad(value, list(G0.parameters()))])
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-7)


def test_wgan_critic_warm_up_as_in_the_reference():
    """WGAN's reference trains the critic 100 steps per G step for the first 25 G steps and every
    500th, 5 otherwise: 30 G steps make 25 x 100 + 5 x 5 = 2,525 critic steps. Other losses: d_steps."""
    from pipeline.tasks.generate import steps as training_steps
    from pipeline.training.parts import critic_steps

    recipe = tiny_recipe(dataset="ring8", arch="toy", loss="wgan", train={"steps": 30, "batch_size": 4, "z_dim": 2,
                                                                         "log_every": 10, "eval_every": 30})
    assert recipe.train.d_steps_warmup == 100 and recipe.train.d_steps == 5
    calls = []
    plain = training_steps.d_step
    result = None
    try:
        training_steps.d_step = lambda *a, **k: calls.append(1) or plain(*a, **k)
        result = train(recipe, point_data(n=200), progress=False)
    finally:
        training_steps.d_step = plain
    assert len(calls) == 2525 and result.d_updates == 2525
    assert [critic_steps(recipe, s) for s in (1, 25, 26, 500, 501, 502, 1001)] == [100, 100, 5, 5, 100, 5, 100]
    assert tiny_recipe(loss="wgan_gp").train.d_steps_warmup == 0 and tiny_recipe().train.d_steps_warmup == 0
    off = tiny_recipe(loss="wgan", train={"d_steps_warmup": 0})
    assert [critic_steps(off, s) for s in (1, 501)] == [5, 5]


def test_each_loss_carries_its_published_generator_noise():
    """The WGAN and WGAN-GP references draw fresh noise for the G step; the DCGAN family reuses the
    D step's fakes; an explicit choice stands; an unrolled G looks ahead on the D step's batch."""
    for loss in LOSSES.names():
        expected = "fresh" if loss in ("wgan", "wgan_gp") else "reuse"
        assert tiny_recipe(loss=loss).train.g_noise == expected, loss
    assert tiny_recipe(loss="wgan_gp", train={"g_noise": "reuse"}).train.g_noise == "reuse"
    assert tiny_recipe(loss="ns", train={"g_noise": "fresh"}).train.g_noise == "fresh"
    from pipeline.variants import resolve

    recipe, notes = resolve(raw_recipe(loss="minimax", train={"unroll_steps": 2, "g_noise": "fresh"}), {})
    assert recipe.train.g_noise == "reuse" and "does not apply to an unrolled GAN" in notes[0]


def test_more_generator_steps_share_the_noise_and_simultaneous_updates_share_the_weights(images, monkeypatch):
    """g_steps: 2 (PacGAN's Stacked MNIST code) runs G twice per iteration on the same z;
    updates: simultaneous (its 2D code) computes D's gradient at the weights G's was computed at."""
    from pipeline.tasks.generate import steps as training_steps

    seen = []
    plain = training_steps.g_step
    monkeypatch.setattr(training_steps, "g_step", lambda g, d, o, l, batch, *a, **k: seen.append(batch.z.clone())
                        or plain(g, d, o, l, batch, *a, **k))
    train(tiny_recipe(train={"steps": 2, "g_steps": 2}), images, progress=False)
    assert len(seen) == 4 and torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    monkeypatch.setattr(training_steps, "g_step", plain)

    recipe = tiny_recipe(arch="mlp", loss="ns", train={"updates": "simultaneous", "steps": 1})
    run, batch = _one_step_setup(recipe, images)
    import contextlib
    import copy

    D0 = copy.deepcopy(run.discriminator)
    state = run.gen.get_state()
    run.gen.set_state(state)
    training_steps.simultaneous_iteration(run, LOSSES.get("ns"), recipe, images.x_train, None, contextlib.nullcontext, False,
                                recipe.train.batch_size)
    g_grad = [p.grad.clone() for p in run.generator.parameters()]
    # G's gradient was taken against D0 (before D's update): recompute it there
    run2, _ = _one_step_setup(recipe, images)
    run2.discriminator.load_state_dict(D0.state_dict())
    run2.gen.set_state(state)
    b = training_steps.draw_batch(images.x_train, None, recipe.train.batch_size, recipe.train.z_dim, False, run2.gen)
    LOSSES.get("ns").generator(D0(run2.generator(b.z), None)).backward()
    assert all(torch.allclose(a, p.grad) for a, p in zip(g_grad, run2.generator.parameters()))
    with pytest.raises(ConfigError, match="simultaneous computes one D and one G gradient"):
        tiny_recipe(train={"updates": "simultaneous", "d_steps": 2})


def test_toy_training_and_evaluator_rows():
    data = point_data()
    recipe = tiny_recipe(dataset="ring8", arch="toy", train={"steps": 4})
    calls = []
    result = train(recipe, data, progress=False, tracker=NullTracker(),
                   checker=GenerateCheck(lambda g: calls.append(1) or {"modes_captured": 3.0}, recipe))
    assert [r["step"] for r in result.eval_rows] == [2, 4] and len(calls) == 2


def test_same_seed_same_weights(images):
    a = train(tiny_recipe(), images, progress=False)
    b = train(tiny_recipe(), images, progress=False)
    assert torch.equal(weights(a.generator), weights(b.generator))
    c = train(tiny_recipe(seed=1), images, progress=False)
    assert not torch.equal(weights(a.generator), weights(c.generator))


@pytest.mark.parametrize("options", [{}, {"loss": "wgan_gp", "train": {"d_steps": 2}}, {"arch": "mlp"},
                                     {"train": {"historical_averaging": 0.5, "minibatch_discrimination": True,
                                                "g_objective": "feature_matching"}},
                                     # progressive growing, resumed half-way into the 28x28 fade (lod 0.5 at step 5)
                                     {"arch": "progressive", "train": {"progressive": 3, "stage_images": 8,
                                                                       "fade_images": 32}}])
def test_resume_after_a_crash_ends_with_the_same_weights(images, tmp_path, options):
    """Kill training after step 4 (checkpoint at step 4), resume, and match an uninterrupted run."""
    state = tmp_path / "last.pt"
    options = copy.deepcopy(options)
    train_options = options.pop("train", {})
    full = train(tiny_recipe(**options, train={"steps": 6, **train_options}), images, progress=False)

    # the loop logs every step below; the crash comes at step 5, after the step-4 checkpoint
    crashing = tiny_recipe(**options, train={"steps": 6, "log_every": 1, **train_options})
    with pytest.raises(Crash):
        train(crashing, images, progress=False, tracker=CrashingTracker(5), state_path=state)
    assert state.exists()
    resumed = train(crashing, images, progress=False, state_path=state)
    assert resumed.resumed_from == 4
    assert torch.equal(weights(full.generator), weights(resumed.generator))
    assert torch.equal(weights(full.discriminator), weights(resumed.discriminator))


def test_resume_refuses_a_checkpoint_from_other_settings(images, tmp_path, capsys):
    state = tmp_path / "last.pt"
    recipe = tiny_recipe(train={"steps": 4, "checkpoint_every": 2})
    with pytest.raises(Crash):
        train(recipe, images, progress=False, tracker=CrashingTracker(4), state_path=state)
    assert state.exists()
    other = tiny_recipe(train={"steps": 4, "checkpoint_every": 2, "lr_g": 1e-3})
    assert train(other, images, progress=False, state_path=state).resumed_from == 0
    assert "other training settings or code" in capsys.readouterr().out


def test_nan_loss_stops_with_step_and_variant(images):
    bad = image_data()
    bad.x_train[0] = float("nan")
    recipe = tiny_recipe(train={"steps": 4, "batch_size": 64})
    with pytest.raises(TrainingDiverged, match=r"variant 'broken': .*NaN/Inf by step 2"):
        train(recipe, bad, variant="broken", progress=False)


def test_invalid_combinations(images):
    with pytest.raises(ConfigError, match="label_smoothing: applies to losses minimax, ns, lsgan, not 'wgan_gp'"):
        tiny_recipe(loss="wgan_gp", train={"label_smoothing": 0.1})
    with pytest.raises(ValueError, match="train\\(\\) needs a resolved recipe"):
        train(raw_recipe(), images, progress=False)
    unlabelled = image_data()
    unlabelled.info["num_classes"] = 0
    with pytest.raises(ConfigError, match="conditional: true needs a labelled dataset"):
        train(tiny_recipe(conditional=True), unlabelled, progress=False)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_tracker_receives_logged_rows(images):
    tracker = NullTracker()
    train(tiny_recipe(), images, progress=False, tracker=tracker)
    steps = [step for step, _ in tracker.metrics]
    assert steps == [2, 4]
    # named by section, "train/<key>", so MLflow's chart view groups them
    assert {f"train/{k}" for k in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s")} \
        <= set(tracker.metrics[0][1])
    assert not [k for k in tracker.metrics[0][1] if not k.startswith("train/")]


def _count_forwards(module: torch.nn.Module, calls: list) -> None:
    module.register_forward_hook(lambda m, args, out: calls.append((torch.is_grad_enabled(), out.detach().clone())))


@pytest.mark.parametrize("loss", ["ns", "wgan_gp"])
def test_g_noise_reuse_feeds_the_d_steps_fakes_to_the_g_step_with_one_g_forward(images, loss, monkeypatch):
    """fresh: G runs twice a step (no-grad for D, with grad on new noise for G); reuse: once, and
    the G step's D input is exactly the last D step's fakes."""
    from pipeline.tasks.generate import setup as training_setup, steps as training_steps

    counts, g_inputs = {}, []
    plain_g_step = training_steps.g_step

    def recording_g_step(generator, discriminator, *args, **kwargs):
        calls = []
        hook = discriminator.register_forward_hook(lambda m, a, out: calls.append(a[0].detach().clone()))
        logs = plain_g_step(generator, discriminator, *args, **kwargs)
        hook.remove()
        g_inputs.append(calls[0])
        return logs

    monkeypatch.setattr(training_steps, "g_step", recording_g_step)
    plain_setup = training_setup.setup_run
    g_calls: list = []

    def setup(*args):
        run = plain_setup(*args)
        _count_forwards(run.generator, g_calls)
        return run

    monkeypatch.setattr(training_setup, "setup_run", setup)
    d_steps = 2 if loss == "wgan_gp" else 1
    for mode in ("fresh", "reuse"):
        g_calls.clear()
        g_inputs.clear()
        result = train(tiny_recipe(loss=loss, train={"steps": 2, "g_noise": mode, "d_steps": d_steps}), images,
                       progress=False)
        counts[mode] = len(g_calls) // 2
        assert all(torch.isfinite(torch.tensor(v)) for v in result.log_rows[-1].values())
        if mode == "reuse":  # the G step judged the last D step's fakes (made with grad, on its noise)
            per_step = d_steps
            assert [grad for grad, _ in g_calls] == [False] * (d_steps - 1) + [True] * 1 + \
                [False] * (d_steps - 1) + [True]
            assert torch.equal(g_inputs[-1], g_calls[2 * per_step - 1][1])
    assert counts == {"fresh": d_steps + 1, "reuse": d_steps}


def test_gradient_norms_are_measured_on_logged_steps_only(images, monkeypatch):
    from pipeline.tasks.generate import steps as training_steps

    measured = []
    plain = training_steps.grad_norm
    monkeypatch.setattr(training_steps, "grad_norm", lambda m: measured.append(1) or plain(m))
    result = train(tiny_recipe(train={"steps": 6, "log_every": 3}), images, progress=False)
    assert len(measured) == 2 * 2  # D and G, on steps 3 and 6
    assert all(row["grad_norm_d"] > 0 and row["grad_norm_g"] > 0 for row in result.log_rows)


def test_grad_norms_do_not_change_the_weights_and_reuse_is_the_default(images):
    """Measuring less often is free of side effects: weights equal whatever the log interval."""
    every = train(tiny_recipe(train={"steps": 4, "log_every": 1}), images, progress=False)
    rarely = train(tiny_recipe(train={"steps": 4, "log_every": 4}), images, progress=False)
    assert torch.equal(weights(every.generator), weights(rarely.generator))
    assert tiny_recipe().train.g_noise == "reuse"


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["wgan", "wgan_gp"])
def test_compiled_training_matches_eager_training(images, loss):
    """train.compile: the same steps through torch.compile'd G and D (the gradient penalty through
    eager D) end at the eager weights up to float reordering. (Critics without dropout: compiled
    code draws dropout masks from its own random stream.)"""
    options = {"steps": 2, "log_every": 1, "d_steps": 1}
    eager = train(tiny_recipe(arch="mlp", loss=loss, train=options), images, progress=False)
    compiled_calls = []
    plain_compile = torch.compile

    def recording_compile(module, **kwargs):  # the modules compiled, and a count of the compiled forwards they ran
        wrapped = plain_compile(module, **kwargs)
        compiled_calls.append([type(module).__name__, 0])
        entry = compiled_calls[-1]
        wrapped.register_forward_pre_hook(lambda m, args: entry.__setitem__(1, entry[1] + 1))
        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "compile", recording_compile)
        compiled = train(tiny_recipe(arch="mlp", loss=loss, train={**options, "compile": True}), images, progress=False)
    assert sorted(name for name, _ in compiled_calls) == ["Discriminator", "MLPGenerator"]
    assert all(runs > 0 for _, runs in compiled_calls), compiled_calls  # the steps went through the compiled modules
    assert type(compiled.generator).__name__ == type(eager.generator).__name__  # the module, not the wrapper
    assert torch.allclose(weights(compiled.generator), weights(eager.generator), atol=1e-6)
    assert torch.allclose(weights(compiled.discriminator), weights(eager.discriminator), atol=1e-6)
    for key in ("loss_d", "loss_g"):
        assert compiled.log_rows[-1][key] == pytest.approx(eager.log_rows[-1][key], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_is_fp32_on_every_cpu(monkeypatch, native):
    """The same params.yaml must not train in bf16 on one CPU and fp32 on another: `auto` is bf16 on
    CUDA GPUs only, whatever the CPU computes natively."""
    import pipeline.device as device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    assert device.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert device.resolve_precision("fp32", torch.device("cpu")) == "fp32"  # an explicit choice stands
    assert device.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert device.resolve_precision("auto", torch.device("mps")) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device.resolve_precision("auto", torch.device("cuda")) == "bf16"
