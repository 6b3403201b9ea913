"""Task voxel (3D-GAN): the procedural shapes, the 3D networks' sizes, the depth views, IoU and the 3D classifier's
measurements against hand computations; a tiny run trains, resumes to the same weights, and bad inputs are named."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_resumes_to_the_same_generator, image_data, tiny_recipe

from pipeline.data.prepare import Prepared
from pipeline.data.voxels import SHAPES, inside, random_rotations, voxel_shapes
from pipeline.errors import ConfigError
from pipeline.images import VOXEL_UPSCALE as UPSCALE
from pipeline.images import depth_views
from pipeline.models import ModelSpec, build_models
from pipeline.tasks import TASKS, train
from pipeline.tasks.generate.voxel_metrics import (iou_matrix, nearest_iou, occupancy, pairwise_iou, predict,
                                                   train_voxel_classifier, voxel_metrics)


def voxel_data(per_class: int = 40, side: int = 8, seed: int = 0) -> Prepared:
    occupied, y = voxel_shapes(per_class, side, seed)
    x = occupied.float() * 2 - 1
    n_test = len(x) // 5
    info = {"name": "shapes3d", "kind": "voxels", "shape": list(x.shape[1:]), "num_classes": len(SHAPES),
            "class_names": list(SHAPES), "modes": None, "mode_std": 0.0}
    return Prepared("shapes3d", x[n_test:], y[n_test:], x[:n_test], y[:n_test], info)


def test_each_shape_is_its_implicit_function_at_hand_picked_points():
    s, a = torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    at = lambda shape, *points: inside(shape, torch.tensor([points], dtype=torch.float64), s, a)[0].tolist()  # noqa
    assert at("cube", (0.49, 0.49, 0.49), (0.51, 0, 0)) == [True, False]
    assert at("sphere", (0.7, 0, 0), (0.8, 0, 0)) == [True, False]
    assert at("cylinder", (0.44, 0, 0.59), (0.46, 0, 0), (0, 0, 0.61)) == [True, False, False]
    # a cone: wide at its base (z = -h), a point at its apex (z = +h)
    assert at("cone", (0.5, 0, -0.54), (0.5, 0, 0.54), (0, 0, 0.59)) == [True, False, True]
    assert at("torus", (0.55, 0, 0), (0, 0.55, 0.2), (0, 0, 0)) == [True, True, False]  # the hole is empty


def test_the_shapes_are_seeded_rotated_inside_the_grid_and_interleaved_by_class():
    rotations = random_rotations(50, torch.Generator().manual_seed(0))
    assert torch.allclose(rotations @ rotations.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
    assert torch.allclose(torch.det(rotations), torch.ones(50, dtype=torch.float64))
    x, y = voxel_shapes(20, 16, seed=3)
    again, _ = voxel_shapes(20, 16, seed=3)
    other, _ = voxel_shapes(20, 16, seed=4)
    assert x.shape == (100, 1, 16, 16, 16) and x.dtype == torch.bool
    assert torch.equal(x, again) and not torch.equal(x, other)
    assert y[:10].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    counts = x.flatten(1).sum(1)
    assert counts.min() >= 20  # every shape visible at side 16
    faces = torch.cat([x[:, 0, i].flatten(1) for i in (0, -1)] + [x[:, 0, :, i].flatten(1) for i in (0, -1)]
                      + [x[:, 0, :, :, i].flatten(1) for i in (0, -1)], dim=1)
    assert not faces.any()  # nothing is cut off by the grid
    assert counts[y == 1].float().mean() > counts[y == 3].float().mean()  # a sphere holds more than a cone


def test_depth_views_shade_each_ray_by_its_first_occupied_voxel():
    volume = torch.full((1, 1, 16, 16, 16), -1.0)
    volume[0, 0, 3, 5, 7] = 1.0
    views = depth_views(volume)
    assert views.shape == (1, 1, 16 * UPSCALE, 3 * 16 * UPSCALE)
    small = views[0, 0, ::UPSCALE, ::UPSCALE]  # 16 x 48: along depth | height | width
    expected = torch.full((16, 48), -1.0)
    expected[5, 7] = 1 - 1.4 * 3 / 15          # seen along depth: at (h, w), 3 deep
    expected[3, 16 + 7] = 1 - 1.4 * 5 / 15     # along height: at (d, w), 5 deep
    expected[3, 32 + 5] = 1 - 1.4 * 7 / 15     # along width: at (d, h), 7 deep
    torch.testing.assert_close(small, expected)


def test_iou_by_hand_and_the_nearest_real_shape():
    a = torch.zeros(2, 8)
    a[0, :4] = 1  # voxels 0-3
    a[1, 2:6] = 1  # voxels 2-5: 2 shared of 6
    torch.testing.assert_close(iou_matrix(a, a), torch.tensor([[1.0, 2 / 6], [2 / 6, 1.0]]))
    x, _ = voxel_shapes(10, 8, seed=0)
    volumes = x.float() * 2 - 1
    assert torch.equal(nearest_iou(volumes, volumes), torch.ones(50))  # every shape is its own nearest: a copy
    assert pairwise_iou(volumes[:1].expand(5, -1, -1, -1, -1), 20, seed=0) == 1.0
    assert occupancy(volumes).sum() == x.sum()


def test_the_3d_classifier_tells_the_shapes_apart_and_counts_a_collapsed_set_as_one_class():
    from dataclasses import replace

    from pipeline.config import ClassifierConfig
    from pipeline.metrics.frechet import gaussian

    data = voxel_data(per_class=60, side=16)
    classifier = train_voxel_classifier(data.x_train, data.y_train, 5, replace(ClassifierConfig(), epochs=6,
                                                                                batch_size=16))
    labels, features = predict(classifier, data.x_test)
    assert (labels == data.y_test).float().mean() > 0.65  # 0.73 here (chance: 0.2); 0.91 with the evaluate stage's
    # 4,500 shapes and 6 epochs of 128
    real = gaussian(features)
    full, _ = voxel_metrics(data.x_test, data, classifier, real, 0.2, pairs=200, seed=0)
    one_class = data.x_test[data.y_test == 1][:1].expand(60, -1, -1, -1, -1)  # G drew one sphere 60 times
    collapsed, _ = voxel_metrics(one_class, data, classifier, real, 0.2, pairs=200, seed=0)
    assert full["classes_covered"] == 5 and collapsed["classes_covered"] == 1
    assert collapsed["pairwise_iou"] == 1.0 and full["pairwise_iou"] < 0.5
    assert collapsed["fid_classifier"] > full["fid_classifier"] + 1


@pytest.mark.parametrize("shape, message", [
    ((1, 12, 12, 12), r"arch: voxel3d makes cubic grids of side 4 x 2\^k \(8, 16, 32, 64\), got 12x12x12"),
    ((1, 28, 28), r"arch: voxel3d makes 3D voxel grids \(dataset: shapes3d\); the dataset has shape \[1, 28, 28\]"),
])
def test_a_grid_the_network_cannot_make_is_named(shape, message):
    with pytest.raises(ConfigError, match=message):
        build_models("voxel3d", ModelSpec(data_shape=shape, kind="voxels" if len(shape) == 4 else "image"))


@pytest.mark.parametrize("side", [8, 16, 32])
def test_g_makes_the_grid_d_judges_it(side):
    spec = ModelSpec(data_shape=(1, side, side, side), kind="voxels", z_dim=10, width=4, num_classes=5)
    g, d = build_models("voxel3d", spec)
    volumes = g(torch.randn(3, 10), torch.arange(3))
    assert volumes.shape == (3, 1, side, side, side) and volumes.abs().max() <= 1
    assert d(volumes, torch.arange(3)).shape == (3,)


def test_the_task_and_the_data_must_match():
    with pytest.raises(ConfigError, match=r"task voxel trains on 3D voxel grids \(dataset: shapes3d\); dataset "
                                          r"'fake' holds image data: use task generate for it"):
        TASKS.get("voxel").check_data(image_data(8))
    with pytest.raises(ConfigError, match=r"dataset 'shapes3d' holds 3D voxel grids: train it with task: voxel"):
        TASKS.get("generate").check_data(voxel_data(2))
    recipe = tiny_recipe(task="voxel", dataset="shapes3d")
    assert recipe.arch == "voxel3d"  # the task's own networks, whatever arch says
    with pytest.raises(ConfigError, match=r"train\.progressive: applies to task generate only, not 'voxel'"):
        tiny_recipe(task="voxel", dataset="shapes3d", train={"progressive": 2})


def test_a_voxel_run_trains_checks_and_resumes_to_the_same_weights(tmp_path):
    data = voxel_data(per_class=20)
    recipe = tiny_recipe(task="voxel", dataset="shapes3d", train={"steps": 6, "log_every": 1, "eval_every": 6})
    full = train(recipe, data, progress=False, checker=TASKS.get("voxel").checker(recipe, data, torch.device("cpu")))
    row = full.eval_rows[-1]
    assert 1 <= row["classes_covered"] <= 5 and math.isfinite(row["fid_classifier"]) and 0 <= row["pairwise_iou"] <= 1
    assert_resumes_to_the_same_generator(recipe, data, full, tmp_path)
