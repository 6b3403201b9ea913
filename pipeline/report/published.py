"""Published numbers the report can print beside the lab's, each with its source and protocol.

A study names the tables it is measured against (`report.compare_with`); a study that trains at
other settings than the paper's says how in `report.reduced`, and the report then labels every
published number it prints as set beside a reduced run. Rows are matched to variants by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.registry import Registry


@dataclass(frozen=True)
class Published:
    source: str                              # paper, table, and what its numbers are (mean of n trials, best of a search)
    protocol: str                            # data, samples and metric protocol behind the numbers
    columns: dict[str, str]                  # metrics.json key -> column title
    rows: dict[str, dict[str, float | None]]  # variant name -> metric -> published value (None: not reported)
    percent: tuple[str, ...] = ()            # keys the paper reports in percent (the lab stores fractions)


PUBLISHED: Registry[Published] = Registry("published table")

_2D = {"modes_captured": "modes", "high_quality_frac": "high-quality %", "reverse_kl": "reverse KL"}
PUBLISHED.add("pacgan_ring8", Published(
    "PacGAN (Lin et al. 2018), Table 1: means over 10 trials",
    "ring of 8 Gaussians (std 0.01), 100,000 training points, 2,500 samples, high quality within 3 std",
    _2D, {"gan": {"modes_captured": 6.3, "high_quality_frac": 98.2, "reverse_kl": 0.45},
          "pacgan2": {"modes_captured": 7.9, "high_quality_frac": 95.6, "reverse_kl": 0.07},
          "pacgan4": {"modes_captured": 7.8, "high_quality_frac": 95.9, "reverse_kl": 0.07}},
    percent=("high_quality_frac",)))
PUBLISHED.add("pacgan_grid25", Published(
    "PacGAN (Lin et al. 2018), Table 1: means over 10 trials",
    "5x5 grid of Gaussians (std 0.05), 100,000 training points, 2,500 samples, high quality within 3 std",
    _2D, {"gan": {"modes_captured": 17.3, "high_quality_frac": 94.8, "reverse_kl": 0.70},
          "pacgan2": {"modes_captured": 23.8, "high_quality_frac": 91.3, "reverse_kl": 0.13},
          "pacgan4": {"modes_captured": 24.8, "high_quality_frac": 93.6, "reverse_kl": 0.04}},
    percent=("high_quality_frac",)))
PUBLISHED.add("veegan_ring8", Published(
    "VEEGAN (Srivastava et al. 2017), Table 1 (its own networks and budget)",
    "ring of 8 Gaussians, 2,500 samples, high quality within 3 std",
    {"modes_captured": "modes", "high_quality_frac": "high-quality %"},
    {"unrolled5": {"modes_captured": 7.6, "high_quality_frac": 35.6}},
    percent=("high_quality_frac",)))
PUBLISHED.add("veegan_grid25", Published(
    "VEEGAN (Srivastava et al. 2017), Table 1 (its own networks and budget)",
    "5x5 grid of Gaussians, 2,500 samples, high quality within 3 std",
    {"modes_captured": "modes", "high_quality_frac": "high-quality %"},
    {"unrolled5": {"modes_captured": 23.6, "high_quality_frac": 16.0}},
    percent=("high_quality_frac",)))
PUBLISHED.add("pacgan_stacked_mnist", Published(
    "PacGAN (Lin et al. 2018), Table 3, VEEGAN setting: means over 10 trials",
    "Stacked MNIST, 128,000 training stacks of all 70,000 digits, 26,000 samples labelled by a digit classifier",
    {"modes_covered": "modes (of 1000)", "mode_kl": "KL"},
    {"dcgan": {"modes_covered": 99, "mode_kl": 3.4}, "pacdcgan2": {"modes_covered": 1000, "mode_kl": 0.06}}))
_LUCIC = ("Lucic et al. 2018 (\"Are GANs Created Equal?\"): the best FID of a wide hyperparameter search "
          "(not a typical run)")
PUBLISHED.add("lucic_mnist", Published(
    _LUCIC, "MNIST, 20 epochs, Inception FID of 10,000 generated vs the 10,000 test images",
    {"fid_inception": "FID (Inception)"},
    {"ns": {"fid_inception": 6.8}, "wgan": {"fid_inception": 6.7}, "lsgan": {"fid_inception": 7.8},
     "minimax": {"fid_inception": 9.8}, "wgan_gp": {"fid_inception": 20.3}}))
PUBLISHED.add("lucic_fashion", Published(
    _LUCIC, "Fashion-MNIST, 20 epochs, Inception FID of 10,000 generated vs the 10,000 test images",
    {"fid_inception": "FID (Inception)"},
    {"ns": {"fid_inception": 26.5}, "wgan": {"fid_inception": 21.5}, "lsgan": {"fid_inception": 30.7},
     "minimax": {"fid_inception": 29.6}, "wgan_gp": {"fid_inception": 24.5}}))
PUBLISHED.add("salimans_semi_mnist", Published(
    "Salimans et al. 2016 (\"Improved Techniques for Training GANs\"), Table 1: 93 +- 6.5 test errors, mean +- sd "
    "over 10 random labelled subsets",
    "permutation-invariant MNIST, 100 labels (10 a class), errors of D as a classifier on the 10,000 test digits",
    {"test_errors": "test errors (of 10,000)"}, {"semi": {"test_errors": 93}}))
for _steps, _errors in ((30_000, 180), (180_000, 82)):
    PUBLISHED.add(f"improved_gan_chainer_{_steps // 1000}k", Published(
        f"hiroharu-kato/improved_gan_chainer (a port of the paper's code), data/mnist/log: the averaged D's test error "
        f"after {_steps:,} steps ({_errors / 100:.2f}%), one run",
        "permutation-invariant MNIST, 100 labels (10 a class), the averaged D on the 10,000 test digits",
        {"test_errors": "test errors (of 10,000)"}, {"semi": {"test_errors": _errors}}))
