"""Kinds of data by name: what a kind decides, so no other module branches on it.

A kind owns what training and evaluation need: the protocol's sample counts, its mode-collapse
metrics, what the mode histogram counts, and what the classifier (the measuring instrument) is
trained on. How a kind is shown (its sample figure, the report's caveat) is registered by the
kind's name in `pipeline.figures.kinds`, so a figure or caption edit never reruns training.
A dataset source names its kind; adding a kind is one module here, one registration line, and its
sample figure in `figures/kinds.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.kinds.base import DataKind
from pipeline.kinds.image import ImageKind
from pipeline.kinds.points import PointsKind
from pipeline.kinds.stacked import StackedKind
from pipeline.kinds.voxels import VoxelKind
from pipeline.registry import Registry

if TYPE_CHECKING:
    from pipeline.data import Prepared

KINDS: Registry[DataKind] = Registry("data kind")
KINDS.add("image", ImageKind())
KINDS.add("stacked", StackedKind())
KINDS.add("points", PointsKind())
KINDS.add("voxels", VoxelKind())


def kind_of(prepared: "Prepared") -> DataKind:
    return KINDS.get(prepared.kind, f"dataset {prepared.name!r} kind")


__all__ = ["DataKind", "KINDS", "kind_of"]
