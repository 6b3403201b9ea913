"""Progressive growing (arch: progressive, train.progressive): the schedule, the fade-in, the equalized learning rate,
pixel norm and the minibatch std, checked against hand computations; a tiny run grows 7 -> 14 -> 28."""

from __future__ import annotations

import math

import numpy

import pytest
import torch
import torch.nn.functional as F
from conftest import image_data, tiny_recipe

from pipeline.errors import ConfigError
from pipeline.models import ModelSpec, build_models
from pipeline.models.progressive import (EqualizedConv2d, ProgressiveSchedule, pixel_norm, process_reals,
                                         set_level_of_detail)
from pipeline.tasks import train

SPEC = ModelSpec(data_shape=(1, 28, 28), kind="image", z_dim=8, width=16, d_norm="none")


def networks(seed: int = 0, spec: ModelSpec = SPEC):
    torch.manual_seed(seed)
    g, d = build_models("progressive", spec)
    return g.eval(), d.eval()


def test_the_schedule_is_the_references_stable_then_fade_phases():
    s = ProgressiveSchedule(stages=3, stage_images=100, fade_images=50, s0=7, k=2)
    assert [s.lod(n) for n in (0, 99, 100, 125, 150, 249, 250, 275, 300, 10**6)] == [
        2.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert s.growth_images == 300
    assert s.describe(2.0) == {"resolution": 7.0, "fade_alpha": 1.0}
    assert s.describe(1.5) == {"resolution": 14.0, "fade_alpha": 0.5}  # 14x14 fading in at half weight
    assert s.describe(0.0) == {"resolution": 28.0, "fade_alpha": 1.0}
    two = ProgressiveSchedule(stages=2, stage_images=10, fade_images=0, s0=7, k=2)  # starts at 14, no fade
    assert [two.lod(n) for n in (0, 9, 10)] == [1.0, 1.0, 0.0]


def test_a_schedule_with_more_resolutions_than_the_image_has_names_the_ones_it_has():
    with pytest.raises(ConfigError, match=r"train\.progressive: 4 resolutions do not fit images of side 28, which "
                                          r"grow through 3 \(7, 14, 28\); set train\.progressive to at most 3"):
        ProgressiveSchedule(stages=4, stage_images=1, fade_images=1, s0=7, k=2)


def test_g_makes_the_coarse_image_upscaled_and_fades_the_finer_one_in_linearly():
    g, _ = networks()
    z = torch.randn(5, 8)
    out = {}
    with torch.no_grad():
        for lod in (2.0, 1.0, 1.25, 0.0):
            set_level_of_detail(lod, g)
            out[lod] = g(z)
    assert all(o.shape == (5, 1, 28, 28) for o in out.values())
    coarse = out[2.0][..., ::4, ::4]  # 7x7, each pixel a 4x4 block
    assert torch.equal(out[2.0], coarse.repeat_interleave(4, 2).repeat_interleave(4, 3))
    mid = out[1.0][..., ::2, ::2]
    assert torch.equal(out[1.0], mid.repeat_interleave(2, 2).repeat_interleave(2, 3))
    assert not torch.equal(out[1.0], out[2.0])
    # a quarter of the way back from 14x14 to 7x7: the lerp of the two levels' images
    torch.testing.assert_close(out[1.25], 0.75 * out[1.0] + 0.25 * out[2.0], rtol=0, atol=1e-6)
    assert out[0.0][..., ::2, ::2].ne(out[0.0][..., 1::2, ::2]).any()  # full resolution: no blocks


def test_d_at_a_coarse_level_sees_the_average_pooled_image_and_not_the_finer_layers():
    _, d = networks()
    x = torch.randn(8, 1, 28, 28)
    set_level_of_detail(1.0, d)
    with torch.no_grad():
        before = d(x)
        pooled = F.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
        torch.testing.assert_close(d(pooled), before, rtol=0, atol=1e-5)  # only the 14x14 average counts
        body = d.features
        body.from_rgb[2].weight.normal_()  # the 28x28 layers are not in use at lod 1
        body.blocks[1][0].weight.normal_()
        torch.testing.assert_close(d(x), before, rtol=0, atol=0)
        set_level_of_detail(0.5, d)  # half-way into 28x28: now they count
        assert not torch.allclose(d(x), before)


def test_reals_are_blended_to_the_level_of_detail_as_the_reference_does():
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(process_reals(x, 0.0), x)
    down = F.avg_pool2d(x, 2)
    up = lambda t, f: t.repeat_interleave(f, 2).repeat_interleave(f, 3)  # noqa: E731
    torch.testing.assert_close(process_reals(x, 1.0), up(down, 2))
    blend = 0.5 * down + 0.5 * up(F.avg_pool2d(down, 2), 2)  # lod 1.5: 14x14 half-way to its 7x7 version
    torch.testing.assert_close(process_reals(x, 1.5), up(blend, 2))


def test_equalized_layers_scale_n01_weights_by_he_constant_at_every_call():
    torch.manual_seed(0)
    conv = EqualizedConv2d(32, 16, 3)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(32 * 9))
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.05)  # stored N(0, 1)
    x = torch.randn(2, 32, 7, 7)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))


def test_pixel_norm_gives_each_pixel_unit_mean_square_over_channels():
    x = torch.randn(4, 16, 7, 7) * 5
    assert torch.allclose(pixel_norm(x).pow(2).mean(1), torch.ones(4, 7, 7), atol=1e-5)


def test_the_minibatch_std_feeds_ds_last_convolution_so_a_sample_is_judged_with_its_group():
    _, d = networks()
    body = d.features
    assert body.conv_last.in_channels == body.blocks[0][1].out_channels + 1  # one more feature map
    x = torch.randn(8, 1, 28, 28)
    other = x.clone()
    other[1:4] = torch.randn(3, 1, 28, 28)  # sample 0's group (0, 2, 4, 6 strided) changes; sample 0 does not
    with torch.no_grad():
        assert d(x)[0].item() != pytest.approx(d(other)[0].item(), abs=1e-7)


def test_the_level_of_detail_travels_in_the_state_dict():
    g, _ = networks()
    set_level_of_detail(1.5, g)
    fresh, _ = networks(seed=1)
    fresh.load_state_dict(g.state_dict())
    assert fresh.lod == 1.5


@pytest.mark.parametrize("overrides, message", [
    ({"arch": "dcgan", "train": {"progressive": 3}},
     r"train\.progressive: 3 grows arch: progressive's networks, not arch 'dcgan'"),
    ({"arch": "progressive", "train": {"progressive": 3, "stage_images": 100, "fade_images": 100}},
     r"reaches the full resolution after 400 real images .* but training shows D only 64 .*raise train\.steps"),
    ({"arch": "progressive", "train": {"progressive": 2, "stage_images": 1, "compile": True}},
     r"progressive growing trains in one uncompiled process .* set train\.compile: false"),
    ({"task": "semi", "data": {"labels_per_class": 1}, "train": {"progressive": 2}},
     r"train\.progressive: applies to task generate only"),
])
def test_a_schedule_that_cannot_grow_is_refused_before_training(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_recipe(**overrides)


def test_the_minibatch_std_trick_is_refused_where_the_architecture_has_it_built_in():
    message = r"train\.minibatch_std: arch progressive has the minibatch standard deviation in its discriminator already"
    with pytest.raises(ConfigError, match=message):  # when the recipe is resolved, before any work
        tiny_recipe(arch="progressive", train={"minibatch_std": True})
    with pytest.raises(ConfigError, match=message):  # and where the networks are built
        build_models("progressive", ModelSpec(**{**SPEC.__dict__, "minibatch_std": True}))


def test_a_run_grows_7_14_28_logs_resolution_and_alpha_and_ends_at_full_size():
    recipe = tiny_recipe(arch="progressive", train={"steps": 12, "log_every": 1, "progressive": 3,
                                                     "stage_images": 32, "fade_images": 32})
    result = train(recipe, image_data(64), progress=False)
    rows = result.log_rows
    # batch 16: step s trains after 16 (s - 1) images; 32 at 7x7, 14x14 fading in over 32 (weight 0 at step 3, 0.5 at
    # step 4), 32 at 14x14, 28x28 fading in, then 28x28 to the end
    assert [r["resolution"] for r in rows] == [7, 7, 7, 14, 14, 14, 14, 28, 28, 28, 28, 28]
    assert [r["fade_alpha"] for r in rows] == [1, 1, 1, 0.5, 1, 1, 1, 0.5, 1, 1, 1, 1]
    assert all(math.isfinite(r["loss_d"]) for r in rows)
    assert result.generator.lod == 0.0 and result.discriminator.features.lod == 0.0


def test_the_growth_figure_shows_the_same_latents_at_each_resolution(tmp_path):
    from PIL import Image

    from pipeline.figures import save_growth

    g, _ = networks()
    entry = save_growth(g, SPEC, stages=3, columns=4, seed=0, out_dir=tmp_path)
    assert entry == {"file": "growth.png", "resolutions": [7, 14, 28]}
    picture = Image.open(tmp_path / "growth.png").convert("L")
    assert picture.size == (4 * 30 + 2, 3 * 30 + 2)  # 4 columns, 3 rows of 28x28 tiles with 2-pixel borders
    pixels = torch.from_numpy(numpy.asarray(picture).copy()).int()
    top_left, bottom_left = pixels[2:30, 2:30], pixels[62:90, 2:30]
    assert torch.equal(top_left, top_left[::4, ::4].repeat_interleave(4, 0).repeat_interleave(4, 1))  # 7x7 blocks
    assert not torch.equal(bottom_left, bottom_left[::2, ::2].repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert g.lod == 0.0  # left at the full resolution
    plain, _ = build_models("dcgan", SPEC)
    assert save_growth(plain, SPEC, 3, 4, 0, tmp_path) == {"unavailable": "not a progressive generator"}
