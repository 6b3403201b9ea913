"""FID / KID / precision-recall through torch-fidelity, on the lab's classifier features or on the
standard FID Inception network.

Classifier features (the default) are fast on a CPU and rank models; their FID is not comparable
with published numbers. Inception features (`pipeline.metrics.inception`: torch-fidelity's
`inception-v3-compat`, TensorFlow's 2015-12-05 FID graph) give FIDs that are. Metric keys carry
the feature name (`fid_classifier`, `fid_inception`) so the two are never confused, and every
computation returns its protocol: features, weights digest, images on each side, resize.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pipeline.images import from_uint8
from pipeline.metrics.prdc import prdc

CLASSIFIER_EXTRACTOR = "gan-lab-classifier"
INCEPTION_EXTRACTOR = "gan-lab-inception-v3-compat"  # torch-fidelity's inception-v3-compat, NHWC

_RENAME = {
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid_mean",
    "kernel_inception_distance_std": "kid_std",
    "precision": "precision",
    "recall": "recall",
}


class TensorImages(Dataset):
    """uint8 N x C x H x W images as the Dataset torch-fidelity reads."""

    def __init__(self, images: Tensor, channels: int | None = None) -> None:
        if images.dtype != torch.uint8:
            raise TypeError("TensorImages needs uint8 images")
        if channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # Inception reads RGB
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


# how a classifier file becomes a model: storage's business (pipeline.checkpoint), handed in by the caller
_CLASSIFIER_LOADER: dict[str, Callable[[str], torch.nn.Module]] = {}


def _register_classifier_extractor() -> None:
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if CLASSIFIER_EXTRACTOR in FEATURE_EXTRACTORS_REGISTRY:
        return

    class ClassifierFeatureExtractor(FeatureExtractorBase):
        """The classifier's 128-d penultimate layer (`features`) and its logits, from uint8 images."""

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            if feature_extractor_weights_path is None:
                raise ValueError("the classifier feature extractor needs feature_extractor_weights_path")
            self.model = _CLASSIFIER_LOADER["load"](feature_extractor_weights_path)

        @staticmethod
        def get_provided_features_list():
            return ("features", "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"fid": "features", "kid": "features", "prc": "features", "isc": "logits"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            features = self.model.features(from_uint8(x))
            out = {"features": features, "logits": self.model.head(features)}
            return tuple(out[name] for name in self.features_list)

    torch_fidelity.register_feature_extractor(CLASSIFIER_EXTRACTOR, ClassifierFeatureExtractor)


def _register_inception_extractor() -> None:
    """torch-fidelity's inception-v3-compat with its weights in NHWC (channels_last) memory layout: the
    same arithmetic in another order (features agree within 1e-5), 1.8x faster on a CPU (oneDNN)."""
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if INCEPTION_EXTRACTOR in FEATURE_EXTRACTORS_REGISTRY:
        return

    class NHWCInception(FeatureExtractorInceptionV3):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list, **kwargs)
            self.to(memory_format=torch.channels_last)

    torch_fidelity.register_feature_extractor(INCEPTION_EXTRACTOR, NHWCInception)


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def tensor_digest(x: Tensor) -> str:
    """Digest of a tensor's exact contents (shape and dtype included)."""
    h = hashlib.sha256(f"{tuple(x.shape)} {x.dtype}".encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def equal_size(a: Tensor, b: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Both sets cut to the smaller one's size by a seeded random subset: FID's bias depends on the
    sample size, and precision/recall are defined on sets of equal size (Kynkaanniemi et al. 2019)."""
    n = min(len(a), len(b))
    gen = torch.Generator().manual_seed(seed)
    pick = lambda x: x if len(x) == n else x[torch.randperm(len(x), generator=gen)[:n]]  # noqa: E731
    return pick(a), pick(b)


def real_cache_name(real: Tensor, name: str, features: str, weights_path: str | Path) -> str:
    """The cache entry of the real set's features: the set's exact contents (so dataset, image size,
    split and subset all count), the feature extractor and its weights. `name` only makes it readable."""
    return f"{name}-{features}-{tensor_digest(real)}-{file_digest(weights_path)}"


def fidelity_metrics(generated: Tensor, real: Tensor, *, real_name: str, features: str, weights_path: str | Path,
                     kid_subset_size: int, cache_root: Path, batch_size: int = 256, seed: int = 0,
                     load_classifier: Callable[[str], torch.nn.Module] | None = None
                     ) -> tuple[dict[str, float], dict[str, Any]]:
    """(FID, KID (mean, std), precision and recall between two uint8 image sets cut to equal size,
    the protocol they were measured with).

    `load_classifier` reads the classifier file at `weights_path` (needed for `features="classifier"`).
    Features are cached under `cache_root`, keyed by the exact contents of each set and the
    extractor's weights (`real_cache_name`): the real set's are computed once for every variant, and
    re-evaluating the same samples (another KID subset size, another metric) computes none. Always
    float32, whatever precision the models trained in.
    """
    import torch_fidelity

    if features == "classifier":
        if load_classifier is None:
            raise ValueError("classifier features need load_classifier, which reads the classifier file")
        _CLASSIFIER_LOADER["load"] = load_classifier
    _register_classifier_extractor()
    _register_inception_extractor()
    generated, real = equal_size(generated, real, seed)
    extractor = CLASSIFIER_EXTRACTOR if features == "classifier" else INCEPTION_EXTRACTOR
    channels = 3 if features == "inception" else None
    subset = min(kid_subset_size, len(generated))
    options = dict(
        input1=TensorImages(generated, channels), input2=TensorImages(real, channels),
        feature_extractor=extractor, feature_extractor_weights_path=str(weights_path), kid_subset_size=subset,
        cache=True, cache_root=str(cache_root),
        input1_cache_name=real_cache_name(generated, "generated", features, weights_path),
        input2_cache_name=real_cache_name(real, real_name, features, weights_path),
        batch_size=batch_size, cuda=torch.cuda.is_available(), save_cpu_ram=True, verbose=False)
    with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
        raw = torch_fidelity.calculate_metrics(fid=True, kid=True, prc=True, **options)
        both = cached_features(options)  # what torch-fidelity just computed and cached
    metrics = {f"{_RENAME[k]}_{features}": float(v) for k, v in raw.items() if k in _RENAME}
    dc = prdc(both[1], both[0], k=PRDC_K)
    metrics.update({f"density_{features}": dc["density"], f"coverage_{features}": dc["coverage"]})
    return metrics, fidelity_protocol(features, weights_path, generated, real, subset)


PRDC_K = 5  # Naeem et al.'s neighbourhood for density and coverage (torch-fidelity's precision/recall use 3)


def cached_features(options: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """(generated, real) feature matrices of the layer FID uses, read back from torch-fidelity's
    cache (computed there and then if absent)."""
    from torch_fidelity.utils import (
        create_feature_extractor,
        extract_featuresdict_from_input_id_cached,
        resolve_feature_layer_for_metric,
    )

    layer = resolve_feature_layer_for_metric("fid", **options)
    extractor = create_feature_extractor(options["feature_extractor"], [layer], **options)
    return tuple(extract_featuresdict_from_input_id_cached(i, extractor, **options)[layer] for i in (1, 2))


def fidelity_protocol(features: str, weights_path: str | Path, generated: Tensor, real: Tensor,
                      kid_subset_size: int) -> dict[str, Any]:
    """What a reader needs to set an FID beside another: features and weights, images on each side,
    how images reach the network."""
    from pipeline.metrics.inception import CONVERTED_NAME, DESCRIPTION

    c, h, w = generated.shape[1:]
    if features == "inception":
        standard = Path(weights_path).name == CONVERTED_NAME
        network = DESCRIPTION if standard else f"Inception-v3 (torch-fidelity inception-v3-compat), weights {weights_path}"
        resize = f"{h}x{w} to 299x299, TensorFlow-1 bilinear (torch-fidelity)" + (
            ", grey repeated to RGB" if c == 1 else "")
        layer = "2048-d pool features"
    else:
        network, layer = "the lab's classifier (models/classifier)", "128-d penultimate layer"
        resize = f"none ({c}x{h}x{w}, as generated)"
    return {"features": features, "network": network, "layer": layer,
            "weights_sha256": file_digest(weights_path), "n_generated": len(generated), "n_reference": len(real),
            "resize": resize, "kid_subset_size": kid_subset_size}


@torch.inference_mode()
def classifier_features(classifier: torch.nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    """The classifier's penultimate-layer features of images in [-1, 1], float64 on the CPU."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(x[i:i + batch_size].to(device)).double().cpu()
                      for i in range(0, len(x), batch_size)])


def _stats(features: Tensor) -> dict:
    f = features.numpy()
    return {"mu": f.mean(axis=0), "sigma": np.cov(f, rowvar=False)}


def intra_fid(classifier: torch.nn.Module, generated: Tensor, generated_labels: Tensor, real: Tensor,
              real_labels: Tensor, num_classes: int, seed: int = 0) -> dict[str, float]:
    """Intra-FID (Miyato & Koyama 2018): FID between the generated and real images of each class, on
    the classifier's features; the mean and the worst class. A conditional model covers every class
    by construction; this shows collapse *inside* a class. Empty when some class has too few
    images for a full-rank covariance (fewer than the feature dimension plus one, in either set)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    g_feat, r_feat = classifier_features(classifier, generated), classifier_features(classifier, real)
    dim = g_feat.shape[1]
    values = []
    for k in range(num_classes):
        g, r = equal_size(g_feat[generated_labels == k], r_feat[real_labels == k], seed + k)
        if len(g) <= dim:
            return {}
        values.append(fid_statistics_to_metric(_stats(g), _stats(r), verbose=False)["frechet_inception_distance"])
    return {"intra_fid_classifier": float(np.mean(values)), "intra_fid_max_classifier": float(np.max(values))}
