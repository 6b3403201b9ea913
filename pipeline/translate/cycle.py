"""Task cycle: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017) between two image datasets,
domain A (`dataset`) and domain B (`data.cycle_with`), resized to A's size. Nothing pairs an image of A
with one of B; two generators (G_AB, G_BA) and two discriminators (D_A, D_B) learn from

  GAN loss of G_AB against D_B + GAN loss of G_BA against D_A
  + `cycle.cycle_weight` x (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)        (cycle consistency, lambda 10)
  + `cycle.identity_weight` x (|G_AB(b) - b| + |G_BA(a) - a|)                   (identity, 0.5 lambda = 5)

with any registered GAN loss (CycleGAN uses LSGAN), weighed as the reference code (junyanz/pytorch-CycleGAN-and-
pix2pix, cycle_gan_model.py) weighs it: D's loss halved, G's adversarial term without the loss paper's factor
(LSGAN's MSE(D(G(a)), 1)). As there: instance norm in G and D, weights N(0, 0.02), D judging fakes drawn from a
pool of the last `cycle.pool_size` (50) half the time (`ImagePool`), and the learning rate constant for the first half
of the steps, then falling linearly to zero. G is the U-Net of task translate without dropout, D the PatchGAN on one
image. The departure from the reference: U-Net generators (CycleGAN's: ResNet blocks) sized for small images.

Metrics (evaluate), per direction on the test images of the source domain:
  `fid_classifier_ab`: FID between G_AB(A test) and B's test images on B's classifier features;
  `accuracy_ab`: B's classifier on G_AB(A test) against the A labels (is the digit kept?), beside
  `accuracy_ab_untranslated` (B's classifier on A's test images merely resized: what translation adds);
  `cycle_l1_a`: |G_BA(G_AB(a)) - a|, pixels in [0, 1]; and the same from B to A.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from pipeline import paths
from pipeline.data import Prepared
from pipeline.errors import ConfigError
from pipeline.images import from_uint8, image_grid, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.translate.networks import PatchGAN, UNet

SAMPLE_ROWS = 8


def to_size(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Images resized (bilinear) to `shape` = (C, H, W); channels must agree."""
    if x.shape[1] != shape[0]:
        raise ConfigError(f"data.cycle_with: the two domains need the same number of channels, got {x.shape[1]} "
                          f"and {shape[0]}")
    if tuple(x.shape[-2:]) == tuple(shape[-2:]):
        return x
    return F.interpolate(x.float(), size=tuple(shape[-2:]), mode="bilinear", align_corners=False).clamp(-1, 1)


@dataclass
class Domains:
    """Both domains' images at A's size; labels only for evaluation (training never sees them)."""

    a_train: Tensor
    b_train: Tensor
    a_test: Tensor
    b_test: Tensor
    a_labels: Tensor | None
    b_labels: Tensor | None
    b_native: tuple[int, ...]   # B's own C, H, W: what B's classifier reads


def domains(a: Prepared, b: Prepared) -> Domains:
    for p in (a, b):
        if p.kind != "image":
            raise ConfigError(f"task cycle needs two image datasets; {p.name!r} is {p.kind!r} data")
    shape = a.data_shape
    return Domains(a.x_train, to_size(b.x_train, shape), a.x_test, to_size(b.x_test, shape), a.y_test, b.y_test,
                   b.data_shape)


class ImagePool:
    """CycleGAN's image buffer (util/image_pool.py): until it holds `size` fakes each new one is kept and returned;
    then each new fake is, with probability 1/2, swapped for a random kept one (which D judges instead), else
    returned as it is. D so sees a history of G's fakes, not only the latest. Draws come from `gen`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # (kept, C, H, W)

    def query(self, fakes: Tensor, gen: torch.Generator) -> Tensor:
        if self.size == 0:
            return fakes
        out = []
        for fake in fakes.detach():
            kept = 0 if self.images is None else len(self.images)
            if kept < self.size:
                self.images = fake[None].clone() if self.images is None else torch.cat([self.images, fake[None]])
                out.append(fake)
            elif torch.rand((), device=fake.device, generator=gen) < 0.5:
                i = int(torch.randint(self.size, (), device=fake.device, generator=gen))
                out.append(self.images[i].clone())
                self.images[i] = fake
            else:
                out.append(fake)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = state["images"]


@dataclass
class CycleModels:
    g_ab: UNet
    g_ba: UNet
    d_a: PatchGAN
    d_b: PatchGAN
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    pool_a: ImagePool            # past G_BA(b), what D_A judges
    pool_b: ImagePool            # past G_AB(a), what D_B judges
    step: int = 0
    d_updates: int = 0
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)

    def modules(self) -> dict[str, Any]:
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b, "opt_g": self.opt_g,
                "opt_d": self.opt_d, "pool_a": self.pool_a, "pool_b": self.pool_b}


def build(recipe: Any, channels: int, device: torch.device) -> CycleModels:
    from pipeline.optim import OPTIMIZERS
    from pipeline.tasks import TASKS

    t = recipe.train
    loss = TASKS.get("cycle").loss(recipe.loss)
    torch.manual_seed(recipe.seed)
    norm = "none" if (loss.gradient_penalty or t.spectral_norm) else "instance"
    g_ab, g_ba = (UNet(channels, t.width, 0.0, norm="instance").to(device) for _ in range(2))
    d_a, d_b = (PatchGAN(channels, t.width, norm, t.spectral_norm, inputs=1).to(device) for _ in range(2))
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    opt_g = make([*g_ab.parameters(), *g_ba.parameters()], t.lr_g, t.betas, device)
    opt_d = make([*d_a.parameters(), *d_b.parameters()], t.lr_d, t.betas, device)
    return CycleModels(g_ab, g_ba, d_a, d_b, opt_g, opt_d, torch.Generator(device=device).manual_seed(recipe.seed),
                       ImagePool(recipe.cycle.pool_size), ImagePool(recipe.cycle.pool_size))


def generator_loss(loss: Any, m: CycleModels, a: Tensor, b: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor],
                                                                                          Tensor, Tensor]:
    """(G's total loss, its terms, G_AB(a), G_BA(b))."""
    from pipeline.losses import image_to_image_terms
    from pipeline.training.steps import frozen

    c = recipe.cycle
    g_term = image_to_image_terms(loss)[1]
    fake_b, fake_a = m.g_ab(a), m.g_ba(b)
    with frozen(m.d_a), frozen(m.d_b):
        adv = g_term(m.d_b(fake_b).float()) + g_term(m.d_a(fake_a).float())
    cyc = (m.g_ba(fake_b) - a).abs().mean() + (m.g_ab(fake_a) - b).abs().mean()
    total = adv + c.cycle_weight * cyc
    terms = {"loss_adv": adv.detach(), "loss_cycle": cyc.detach()}
    if c.identity_weight:
        idt = (m.g_ab(b) - b).abs().mean() + (m.g_ba(a) - a).abs().mean()
        total = total + c.identity_weight * idt
        terms["loss_identity"] = idt.detach()
    return total, terms, fake_b, fake_a


def discriminator_loss(loss: Any, m: CycleModels, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor,
                       recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
    from pipeline.losses import gradient_penalty, image_to_image_terms

    t = recipe.train
    smooth = 1.0 - t.label_smoothing
    d_term = image_to_image_terms(loss)[0]
    d_a = d_term(m.d_a(a).float(), m.d_a(fake_a.detach()).float(), smooth)
    d_b = d_term(m.d_b(b).float(), m.d_b(fake_b.detach()).float(), smooth)
    total = d_a + d_b
    if loss.gradient_penalty:
        gp = (gradient_penalty(lambda x: m.d_a(x).flatten(1).mean(1), a, fake_a, 1, m.gen)
              + gradient_penalty(lambda x: m.d_b(x).flatten(1).mean(1), b, fake_b, 1, m.gen))
        total = total + t.gp_weight * gp
    return total, {"loss_d": total.detach(), "loss_d_a": d_a.detach(), "loss_d_b": d_b.detach()}


@torch.no_grad()
def apply(generator: nn.Module, x: Tensor, batch_size: int = 500) -> Tensor:
    """G on `x`, batched, in eval mode (there is no dropout: deterministic), on the CPU."""
    device = next(generator.parameters()).device
    was = generator.training
    generator.eval()
    out = torch.cat([generator(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    generator.train(was)
    return out


def train_cycle(recipe: Any, d: Domains, *, variant: str = "variant", tracker: Any = None,
                classifiers: tuple[nn.Module | None, nn.Module | None] = (None, None), state_path: Path | None = None,
                progress: bool = True) -> CycleModels:
    from pipeline.device import autocast_factory
    from pipeline.optim import scheduled_lr, set_lr
    from pipeline.tasks import TASKS
    from pipeline.tracking import TRAIN_EVAL, NullTracker, in_section
    from pipeline.training.steps import critic_steps
    from pipeline.translate.train import LossLog, resume, save_state
    from pipeline.variants import for_this_machine

    recipe = for_this_machine(recipe)
    tracker = tracker or NullTracker()
    t = recipe.train
    device = torch.device(t.device)
    loss = TASKS.get("cycle").loss(recipe.loss)
    m = build(recipe, d.a_train.shape[1], device)
    start = resume(m, recipe, state_path)
    a_all, b_all = d.a_train.to(device), d.b_train.to(device)
    autocast = autocast_factory(t.precision, device)
    log = LossLog(variant, tracker)
    bar = tqdm(total=t.steps, initial=start, desc=f"train {variant}", disable=None if progress else True, unit="step")

    def draw(x: Tensor) -> Tensor:
        return x[torch.randint(len(x), (t.batch_size,), device=device, generator=m.gen)]

    for step in range(start + 1, t.steps + 1):
        for optimizer, base in ((m.opt_g, t.lr_g), (m.opt_d, t.lr_d)):
            set_lr(optimizer, scheduled_lr(base, step, t.steps, t.lr_schedule))
        a, b = draw(a_all), draw(b_all)  # unpaired: independent draws
        with autocast():
            loss_g, terms, fake_b, fake_a = generator_loss(loss, m, a, b, recipe)
        m.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        m.opt_g.step()
        for k in range(critic_steps(recipe, step)):  # CycleGAN: D after G, on G's latest fakes, through the pools
            if k:
                a, b = draw(a_all), draw(b_all)
                with torch.no_grad(), autocast():
                    fake_b, fake_a = m.g_ab(a), m.g_ba(b)
            fake_b, fake_a = m.pool_b.query(fake_b, m.gen), m.pool_a.query(fake_a, m.gen)
            with autocast():
                loss_d, d_terms = discriminator_loss(loss, m, a, b, fake_a, fake_b, recipe)
            m.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            m.opt_d.step()
            if loss.weight_clipping:
                with torch.no_grad():
                    for p in [*m.d_a.parameters(), *m.d_b.parameters()]:
                        p.clamp_(-t.clip_value, t.clip_value)
            m.d_updates += 1
        log.add({"loss_g": loss_g.detach(), **terms, **d_terms})
        m.step = step
        bar.update()
        if step % t.log_every == 0 or step == t.steps:
            m.log_rows.append(log.flush(step))
            bar.set_postfix(loss_g=f"{m.log_rows[-1]['loss_g']:.3f}", cycle=f"{m.log_rows[-1]['loss_cycle']:.4f}")
        if step % t.eval_every == 0 or step == t.steps:
            n = t.eval_samples
            row = {"step": step, "images_seen": step * t.batch_size,
                   **cycle_metrics(Translations.of(m, d.a_test[:n], d.b_test[:n]), d.a_test[:n], d.b_test[:n],
                                   _head(d.a_labels, n), _head(d.b_labels, n), classifiers, d.b_native, fid=False)}
            m.eval_rows.append(row)
            tracker.log_metrics(in_section(TRAIN_EVAL, row), step)
            tracker.log_image(sample_grid(m, d.a_test[:SAMPLE_ROWS], d.b_test[:SAMPLE_ROWS]), "translations", step)
        if state_path is not None and step % t.checkpoint_every == 0 and step < t.steps:
            save_state(m, recipe, state_path)
    bar.close()
    return m


def _head(x: Tensor | None, n: int) -> Tensor | None:
    return x[:n] if x is not None else None


def sample_grid(m: Any, a: Tensor, b: Tensor) -> Tensor:
    """Rows a | G_AB(a) | G_BA(G_AB(a)), then b | G_BA(b) | G_AB(G_BA(b)): uint8."""
    ab, ba = apply(m.g_ab, a), apply(m.g_ba, b)
    rows = torch.stack([a.cpu(), ab, apply(m.g_ba, ab), b.cpu(), ba, apply(m.g_ab, ba)])  # 6 x N x C x H x W
    first, second = rows[:3].transpose(0, 1).flatten(0, 1), rows[3:].transpose(0, 1).flatten(0, 1)
    return image_grid(torch.cat([first, second]), nrow=3)


@dataclass
class Translations:
    """Each domain's test images translated (ab: A to B, ba: B to A) and translated back (aba, bab)."""

    ab: Tensor
    ba: Tensor
    aba: Tensor
    bab: Tensor

    @classmethod
    def of(cls, m: Any, a: Tensor, b: Tensor) -> "Translations":
        ab, ba = apply(m.g_ab, a), apply(m.g_ba, b)
        return cls(ab, ba, apply(m.g_ba, ab), apply(m.g_ab, ba))


def cycle_metrics(tr: Translations, a: Tensor, b: Tensor, a_labels: Tensor | None, b_labels: Tensor | None,
                  classifiers: tuple[nn.Module | None, nn.Module | None], b_native: tuple[int, ...],
                  fid: bool = True) -> dict[str, float]:
    """Both directions' label accuracy, cycle error and (with `fid`) classifier FID. `classifiers`: (A's, B's)."""
    from pipeline.metrics.classifier import classify
    from pipeline.metrics.fidelity import classifier_features
    from pipeline.metrics.frechet import frechet_distance, gaussian
    from pipeline.translate.metrics import l1_error

    a, b = a.cpu(), b.cpu()
    out = {"cycle_l1_a": l1_error(tr.aba, a), "cycle_l1_b": l1_error(tr.bab, b)}
    clf_a, clf_b = classifiers
    # direction, translated, the untranslated source, the target domain's test images, the target domain's
    # classifier and the size it reads, the source labels
    for name, translated, source, target, clf, size, labels in (
            ("ab", tr.ab, a, b, clf_b, b_native, a_labels), ("ba", tr.ba, b, a, clf_a, tuple(a.shape[1:]), b_labels)):
        if clf is None:
            continue
        if labels is not None:
            for key, x in ((f"accuracy_{name}", translated), (f"accuracy_{name}_untranslated", source)):
                out[key] = float((classify(clf, to_size(x, size)) == labels.cpu()).float().mean())
        if fid:
            feats = [classifier_features(clf, to_size(x, size)) for x in (translated, target)]
            out[f"fid_classifier_{name}"] = frechet_distance(gaussian(feats[0]), gaussian(feats[1]))
    return out


# ---- the stages ---------------------------------------------------------------------------------


def _domains(recipe: Any) -> Domains:
    from pipeline.data import load_prepared

    return domains(load_prepared(recipe.dataset), load_prepared(recipe.data.cycle_with))


def _merged(params_file: str, variant: str, seed: int | None) -> Any:
    """The sample and evaluate stages' recipe: merged, not resolved (what they read needs no resolving)."""
    from pipeline.config import load_params

    return load_params(params_file).merged(variant, seed)


def _classifiers(recipe: Any, device: str = "cpu") -> tuple[nn.Module | None, nn.Module | None]:
    from pipeline.checkpoint import load_dataset_classifier

    return load_dataset_classifier(recipe.dataset, device), load_dataset_classifier(recipe.data.cycle_with, device)


def train(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline import checkpoint
    from pipeline.tracking import NullTracker
    from pipeline.tracking_mlflow import (log_training_files, log_translator_model, run_reference, run_status,
                                         start_training_run)
    from pipeline.variants import for_this_machine, load_lab

    lab = load_lab(params_file, names=False)
    v, recipe = lab.variant(variant), for_this_machine(lab.recipe(variant, seed))
    d = _domains(recipe)
    run_key = paths.run_name(variant, recipe.seed)
    for note in v.notes:
        print(f"note: {variant}: {note}")
    state_path = paths.run_state_path(run_key)
    tracker = start_training_run(recipe, variant, params_file, v.notes, run_key, resume=state_path.exists())
    with run_status(tracker):
        m = train_cycle(recipe, d, variant=run_key, tracker=tracker or NullTracker(),
                        classifiers=_classifiers(recipe, recipe.train.device), state_path=state_path)
        header = {"task": "cycle", "problem": None, "data_shape": list(d.a_train.shape[1:]), "width": recipe.train.width,
                  "dropout": 0.0, "norm": "instance", "variant": variant, "recipe": recipe.to_dict(), "domains": [recipe.dataset,
                                                                                          recipe.data.cycle_with]}
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({"state_dict": m.g_ab.state_dict(), "g_ba": m.g_ba.state_dict(), **header},
                       out / paths.GENERATOR_FILE)
            save_torch({"state_dict": m.g_ab.state_dict(), "g_ba": m.g_ba.state_dict(), "d_a": m.d_a.state_dict(),
                        "d_b": m.d_b.state_dict(), **header}, out / paths.FULL_CHECKPOINT_FILE)
        checkpoint.write_training_tables(run_key, m.log_rows, m.eval_rows)
        checkpoint.write_resolved(run_key, recipe.to_dict(), v.notes)
        checkpoint.write_training_summary(run_key, recipe.to_dict(), recipe.train.device, m.d_updates, {})
        checkpoint.write_run_reference(run_key, run_reference(tracker))
        if tracker is not None:
            log_training_files(tracker, run_key)
            tracker.submit(log_translator_model, m.g_ab, tuple(d.a_train.shape[1:]))
    checkpoint.forget_unfinished_run(run_key)
    last = m.log_rows[-1]
    print(f"trained {run_key}: {recipe.train.steps} steps, loss_g {last['loss_g']:.4f}, cycle {last['loss_cycle']:.4f}")


def _load(run_key: str, shape: list[int], width: int) -> tuple[UNet, UNet]:
    ckpt = load_torch(paths.generator_path(run_key))
    g_ab, g_ba = (UNet(shape[0], width, 0.0, norm=ckpt.get("norm", "batch")) for _ in range(2))
    g_ab.load_state_dict(ckpt["state_dict"])
    g_ba.load_state_dict(ckpt["g_ba"])
    return g_ab.eval(), g_ba.eval()


@dataclass
class _Pair:
    g_ab: UNet
    g_ba: UNet


def sample(variant: str, seed: int | None, params_file: str) -> None:
    recipe = _merged(params_file, variant, seed)
    d = _domains(recipe)
    run_key = paths.run_name(variant, recipe.seed)
    m = _Pair(*_load(run_key, list(d.a_train.shape[1:]), recipe.train.width))
    tr = Translations.of(m, d.a_test, d.b_test)
    save_torch({k: to_uint8(getattr(tr, k)) for k in ("ab", "ba", "aba", "bab")}, paths.generated_path(run_key))
    save_png(sample_grid(m, d.a_test[:SAMPLE_ROWS], d.b_test[:SAMPLE_ROWS]), paths.samples_png(run_key))
    with atomic_dir(paths.latent_dir(run_key)) as out:
        reason = "task cycle: G has no latent space"
        write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                   out / "index.json")
    print(f"sampled {run_key}: {len(d.a_test)} A->B and {len(d.b_test)} B->A translations, grid (image | translated "
          f"| back) -> {paths.samples_png(run_key)}")


def evaluate(variant: str, seed: int | None, params_file: str) -> None:
    recipe = _merged(params_file, variant, seed)
    d = _domains(recipe)
    run_key = paths.run_name(variant, recipe.seed)
    stored = load_torch(paths.generated_path(run_key))
    tr = Translations(**{k: from_uint8(stored[k]) for k in ("ab", "ba", "aba", "bab")})
    metrics = {"n_a": len(d.a_test), "n_b": len(d.b_test),
               **cycle_metrics(tr, d.a_test, d.b_test, d.a_labels, d.b_labels, _classifiers(recipe), d.b_native)}
    write_json(metrics, paths.metrics_path(run_key))
    write_json({}, paths.class_hist_path(run_key))
    write_json({"classifier": {"features": "classifier", "network": "each target domain's classifier "
                               "(models/classifier), translations resized to its input size",
                               "reference": "the target domain's test split", "n_generated": len(d.a_test),
                               "n_reference": len(d.b_test)}}, paths.fid_protocol_path(run_key))
    print(f"evaluated {run_key}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in metrics.items()))
