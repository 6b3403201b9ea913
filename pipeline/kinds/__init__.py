"""Kinds of data by name: what a kind decides, so no other module branches on it.

A kind owns the protocol's sample counts, its mode-collapse metrics, what the mode histogram
counts, the sample figure, and what the classifier (the measuring instrument) is trained on.
A dataset source names its kind; adding a kind is one module here and one registration line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.kinds.base import DataKind
from pipeline.kinds.image import ImageKind
from pipeline.kinds.points import PointsKind
from pipeline.kinds.stacked import StackedKind
from pipeline.registry import Registry

if TYPE_CHECKING:
    from pipeline.data import Prepared

KINDS: Registry[DataKind] = Registry("data kind")
KINDS.add("image", ImageKind())
KINDS.add("stacked", StackedKind())
KINDS.add("points", PointsKind())


def kind_of(prepared: "Prepared") -> DataKind:
    return KINDS.get(prepared.kind, f"dataset {prepared.name!r} kind")


__all__ = ["DataKind", "KINDS", "kind_of"]
