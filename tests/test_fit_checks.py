"""Bad inputs caught when params.yaml is read, before any stage works: each dataset's facts (kind, classes, shape)
known without loading it and equal to what loading gives; every task x dataset kind, architecture x shape and
growth schedule x image size that does not fit, named with the two things and the fix; every parameter naming a file,
folder or store checked, and a secret in the tracking URI refused without being echoed."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import raw_recipe

from pipeline.config import DataConfig, EvalConfig, MlflowConfig, SampleConfig
from pipeline.data.sources import DATASETS, FACTS, dataset_facts
from pipeline.errors import ConfigError
from pipeline.variants import check_paths, check_tracking_uri, resolve


def recipe(data: dict | None = None, train: dict | None = None, **keys):
    raw = raw_recipe(train=train or {}, **keys)
    return dataclasses.replace(raw, data=dataclasses.replace(raw.data, **(data or {})))


def test_every_dataset_has_facts_and_the_offline_ones_load_as_their_facts_say():
    assert set(FACTS) == set(DATASETS.names())
    for name, size in (("mnist5k", None), ("digits", None), ("digits", 16), ("ring8", None), ("grid25", None),
                       ("shapes3d", 8)):
        cfg = DataConfig(image_size=size)
        facts, raw = dataset_facts(name, cfg), DATASETS.get(name)(cfg, 0)
        assert (facts.kind, facts.num_classes, facts.data_shape) == (raw.kind, raw.num_classes, tuple(raw.x.shape[1:]))
    with pytest.raises(ConfigError, match="variants.a.dataset: unknown dataset 'mnist6k'; valid datasets: mnist5k"):
        dataset_facts("mnist6k", DataConfig(), "variants.a.dataset")


@pytest.mark.parametrize("keys, message", [
    (dict(task="translate", dataset="ring8", data=dict(translate="sr4")),
     "task: translate and dataset: ring8 do not fit: task translate trains on images or stacked-digit images, dataset "
     "ring8 holds 2D points; choose a dataset of images or stacked-digit images (mnist5k, digits, mnist, fashion_mnist, "
     "cifar10, stacked_mnist, folder) or a task for ring8 (generate)"),
    (dict(task="translate", dataset="mnist5k", data=dict(translate="sr4", image_size=30)),
     "sides must be divisible by 4, mnist5k holds images of shape 1x30x30; set data.image_size to a multiple of 4"),
    (dict(task="generate", dataset="shapes3d"), "task: generate and dataset: shapes3d do not fit"),
    (dict(task="voxel", dataset="mnist5k"),
     "task: voxel and dataset: mnist5k do not fit: task voxel trains on 3D voxel grids, dataset mnist5k holds images "
     "of shape 1x28x28; choose a dataset of 3D voxel grids (shapes3d) or a task for mnist5k (generate, translate"),
    (dict(task="stack", dataset="cifar10"),
     "task: stack and dataset: cifar10 do not fit: task stack describes 28x28 grey digits zero to nine, dataset "
     "cifar10 holds 10 classes of images of shape 3x32x32; choose a dataset of images (mnist5k, mnist)"),
    (dict(task="cycle", dataset="mnist5k", data=dict(cycle_with="grid25")),
     "task: cycle and data.cycle_with: grid25 do not fit: task cycle translates between two image datasets"),
    (dict(task="semi", dataset="grid25", data=dict(labels_per_class=10)), "task: semi and dataset: grid25 do not fit"),
    # the networks themselves, built on the meta device for the data's shape
    (dict(dataset="ring8", arch="dcgan"),
     "arch: dcgan and dataset: ring8 do not fit: arch: dcgan needs square images, the dataset has shape [2]; use arch: "
     "toy or mlp for 2D points"),
    (dict(task="voxel", dataset="shapes3d", data=dict(image_size=12)),
     "arch: voxel3d and dataset: shapes3d do not fit: arch: voxel3d makes cubic grids of side 4 x 2^k (8, 16, 32, 64)"),
    (dict(arch="progressive", train=dict(progressive=4, steps=100_000)),
     "train.progressive: 4 resolutions do not fit images of side 28, which grow through 3 (7, 14, 28); set "
     "train.progressive to at most 3 (dataset mnist5k)"),
    (dict(sample=dataclasses.replace(SampleConfig(), arithmetic=(7, 1, 42))),
     "sample.arithmetic: class 42 is out of range; valid classes: 0..9 (dataset mnist5k)"),
])
def test_what_does_not_fit_is_named_when_the_recipe_is_resolved(keys, message):
    keys = dict(keys)
    with pytest.raises(ConfigError) as error:
        resolve(recipe(keys.pop("data", None), keys.pop("train", None), **keys))
    assert message in str(error.value)


def test_what_fits_resolves_without_loading_anything():
    for keys in (dict(dataset="cifar10", arch="dcgan", train=dict(spectral_norm=True)), dict(dataset="ring8", arch="toy"),
                 dict(dataset="folder", arch="dcgan", conditional=True, data=dict(folder=".")),  # labels known at load
                 dict(task="voxel", dataset="shapes3d"),
                 dict(arch="progressive", train=dict(progressive=3, steps=4, stage_images=8, fade_images=8))):
        keys = dict(keys)
        resolve(recipe(keys.pop("data", None), keys.pop("train", None), **keys))


def test_every_path_a_parameter_names_is_checked_before_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (recipe(data=dict(root=str(a_file))), f"data.root: {a_file} is a file"),
        (recipe(dataset="folder"), "data.folder: dataset folder needs data.folder set to a directory of images"),
        (recipe(dataset="folder", data=dict(folder=str(tmp_path / "none"))),
         f"data.folder: {tmp_path / 'none'} does not exist or is not a directory"),
        (recipe(task="cycle", data=dict(cycle_with="folder", folder=str(a_file))),
         f"data.folder: {a_file} does not exist or is not a directory"),
        (dataclasses.replace(recipe(), eval=EvalConfig(features=("classifier", "inception"),
                                                       inception_weights=str(tmp_path / "w.pth"))),
         f"eval.inception_weights: {tmp_path / 'w.pth'} is not a file"),
        (dataclasses.replace(recipe(), mlflow=MlflowConfig(tracking_uri=f"sqlite:///{tmp_path}/no/such/mlflow.db")),
         f"mlflow.tracking_uri: the folder of {tmp_path}/no/such/mlflow.db does not exist"),
    ]
    for bad, message in cases:
        with pytest.raises(ConfigError) as error:
            check_paths(bad, "variants.x.")
        assert f"variants.x.{message}" in str(error.value)
    check_paths(recipe(dataset="folder", data=dict(folder=str(tmp_path))))  # an existing folder passes
    check_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")


@pytest.mark.parametrize("uri, shown", [
    ("http://alice:s3cret-pw@mlflow.example.org", "http://alice:***@mlflow.example.org"),
    ("postgresql://mlflow:s3cret-pw@db/mlflow", "postgresql://mlflow:***@db/mlflow"),
])
def test_a_secret_in_the_tracking_uri_is_refused_and_not_repeated(uri, shown):
    with pytest.raises(ConfigError) as error:
        check_tracking_uri(uri)
    assert f"mlflow.tracking_uri: {shown} holds a user name or password" in str(error.value)
    assert "MLFLOW_TRACKING_USERNAME" in str(error.value) and "s3cret-pw" not in str(error.value)
