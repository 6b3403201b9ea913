"""params.yaml parsing: the shipped file is valid; bad input names the key and the valid choices."""

from __future__ import annotations

import copy

import pytest

from pipeline.config import Recipe, deep_merge, load_params, parse_params
from pipeline.errors import ConfigError


def test_shipped_params_resolve_every_variant(params):
    recipes = params.all_variants()
    assert set(recipes) >= {"vanilla", "dcgan", "wgan_gp", "cdcgan"}
    assert recipes["vanilla"].arch == "mlp" and recipes["vanilla"].loss == "minimax"
    assert recipes["wgan_gp"].train.d_steps == 5 and recipes["wgan_gp"].train.betas == (0.0, 0.9)
    assert recipes["cdcgan"].conditional is True
    # untouched keys come from the shared recipe
    assert recipes["wgan_gp"].train.batch_size == recipes["dcgan"].train.batch_size
    assert isinstance(recipes["dcgan"], Recipe)


def test_top_level_loss_changes_every_variant_that_does_not_override_it(params_raw):
    raw = copy.deepcopy(params_raw)
    raw["loss"] = "wgan_gp"
    recipes = parse_params(raw).all_variants()
    assert recipes["dcgan"].loss == "wgan_gp" and recipes["cdcgan"].loss == "wgan_gp"
    assert recipes["vanilla"].loss == "minimax"  # its own override wins
    # WGAN-GP as published unless the recipe says otherwise: 5 critic steps, Adam betas (0, 0.9)
    assert recipes["dcgan"].train.d_steps == 5 and recipes["dcgan"].train.betas == (0.0, 0.9)
    assert recipes["vanilla"].train.d_steps == 1 and recipes["vanilla"].train.betas == (0.5, 0.999)
    raw["train"]["d_steps"] = 2
    assert parse_params(raw).variant("dcgan").train.d_steps == 2


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"train": {"steps": 10, "lr_g": 1.0}, "loss": "ns"}, {"train": {"steps": 3}})
    assert merged == {"train": {"steps": 3, "lr_g": 1.0}, "loss": "ns"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.update(los="ns"), "unknown key 'los' in params.yaml; valid keys: seed, dataset, loss"),
        (lambda r: r["train"].update(stepz=3), "unknown key 'train.stepz'; valid keys under train: steps"),
        (lambda r: r["train"].update(steps="many"), "train.steps must be an integer, got 'many'"),
        (lambda r: r["train"].update(betas=[0.5]), "train.betas must be a list of 2 numbers"),
        (lambda r: r.update(conditional="yes"), "conditional must be true or false"),
        (lambda r: r.update(loss="wgangp"), "unknown loss 'wgangp'; valid losss: minimax, ns, lsgan, hinge, wgan, wgan_gp"),
        (lambda r: r.update(dataset="mnist6k"), "unknown dataset 'mnist6k'; valid datasets: mnist5k"),
        (lambda r: r.update(arch="resnet"), "unknown architecture 'resnet'; valid architectures: "),
        (lambda r: r["variants"].update(bad={"arch": "vgg"}), "variants.bad.arch: unknown architecture 'vgg'"),
        (lambda r: r["variants"].update(bad={"train": {"lr": 1}}), "unknown key 'variants.bad.train.lr'"),
        (lambda r: r["train"].update(precision="fp8"), "train.precision: unknown value 'fp8'; valid values: fp32, bf16"),
        (lambda r: r["train"].update(label_smoothing=0.7), "train.label_smoothing must be in [0, 0.5)"),
        (lambda r: r["train"].update(batch_size=10, pac=4), "must be a multiple of train.pac"),
        (lambda r: r.update(variants={}), "variants: must map at least one variant name"),
        (lambda r: r["eval"].update(features="inception"), "inception needs eval.inception_weights"),
    ],
)
def test_bad_params_are_clear_errors(params_raw, mutate, message):
    raw = copy.deepcopy(params_raw)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    assert message in str(err.value)


def test_unknown_variant_lists_the_variants(params):
    with pytest.raises(ConfigError, match="unknown variant 'nope'; variants in params.yaml: vanilla, dcgan"):
        params.variant("nope")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_training_hash_ignores_logging_but_not_learning_rate(params):
    import dataclasses

    r = params.variant("dcgan")
    more_logging = dataclasses.replace(r, train=dataclasses.replace(r.train, log_every=1, device="cpu"))
    other_lr = dataclasses.replace(r, train=dataclasses.replace(r.train, lr_g=1e-3))
    assert r.training_hash() == more_logging.training_hash()
    assert r.training_hash() != other_lr.training_hash()


def test_exponent_floats_as_dvc_writes_them(tmp_path, params_raw):
    """`dvc exp run -S train.lr_g=5e-5` writes `lr_g: 5e-05`: a number, not a string."""
    import yaml

    text = yaml.safe_dump(params_raw, sort_keys=False).replace("lr_g: 0.0002", "lr_g: 5e-05")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").variant("dcgan").train.lr_g == 5e-05
