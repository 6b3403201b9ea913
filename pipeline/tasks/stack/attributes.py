"""Descriptions of digits from what can be measured on them (in the manner of Morpho-MNIST, Castro et al. 2019), the
text StackGAN is conditioned on where no captions exist offline:

- thickness: the stroke's mean width in pixels, ink area / half its perimeter (a stroke of width t and length L has
  area t L and perimeter about 2 L);
- slant: the shear of the ink's second moments, mu11 / mu02 (pixels right per pixel up), as degrees from upright,
  positive leaning right;
- width: the ink's horizontal extent in pixels once the slant is sheared away.

Each attribute is cut into three bins at its tertiles on the training set (thickness and width within each class,
slant over every digit, since it reads as a direction), so a description ("a thick, right-slanted,
narrow seven") says where a digit sits among the others of its class; its words are the vocabulary. Its embedding is a
fixed text encoder's: the sum of its words' vectors, one seeded N(0, 1) vector of 64 numbers per word, standing in for
the reference's pretrained sentence vectors (dense, of unit-order entries): the CA's Linear layer starts at N(0, 0.02),
so a one-hot bag of four words would start its means near 0.04 against the CA's unit noise, summed N(0, 1) vectors
near 0.3."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import ConfigError

ATTRIBUTES = ("thickness", "slant", "width")
WORDS = {"thickness": ("thin", "medium", "thick"), "slant": ("left-slanted", "upright", "right-slanted"),
         "width": ("narrow", "regular", "wide")}
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def measure(images: Tensor) -> dict[str, Tensor]:
    """Thickness (pixels), slant (degrees, + leans right) and width (pixels) of N x 1 x H x W digits in [-1, 1] (ink:
    > 0); a blank image measures 0 for each."""
    ink = (images[:, 0] > 0).float()
    n, h, w = ink.shape
    area = ink.sum((1, 2))
    padded = F.pad(ink, (1, 1, 1, 1))
    inside = padded[:, :-2, 1:-1] * padded[:, 2:, 1:-1] * padded[:, 1:-1, :-2] * padded[:, 1:-1, 2:]
    perimeter = (ink * (1 - inside)).sum((1, 2))
    thickness = torch.where(perimeter > 0, area / (perimeter / 2).clamp(min=1), torch.zeros_like(area))
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    m = area.clamp(min=1)
    cy, cx = (ink * ys).sum((1, 2)) / m, (ink * xs).sum((1, 2)) / m
    dy, dx = ys - cy.view(n, 1, 1), xs - cx.view(n, 1, 1)
    mu11, mu02 = (ink * dx * dy).sum((1, 2)) / m, (ink * dy * dy).sum((1, 2)) / m
    shear = torch.where(mu02 > 0, -mu11 / mu02.clamp(min=1e-6), torch.zeros_like(mu02))  # rows grow downwards
    slant = torch.rad2deg(torch.atan(shear))
    upright_x = dx + shear.view(n, 1, 1) * dy  # the ink's x once the shear is undone
    big = torch.tensor(1e6)
    right = torch.where(ink > 0, upright_x, -big).amax((1, 2))
    left = torch.where(ink > 0, upright_x, big).amin((1, 2))
    width = torch.where(area > 0, right - left + 1, torch.zeros_like(area))
    return {"thickness": thickness, "slant": slant, "width": width}


@dataclass(frozen=True)
class Bins:
    """The tertiles of each attribute on the training set, thickness and width within each class (a one's "wide" is
    wide for a one), slant over all (a direction): a value below the first edge is bin 0, from the second on bin 2."""

    edges: tuple[dict[str, tuple[float, float]], ...]  # per class

    @classmethod
    def fit(cls, measured: dict[str, Tensor], labels: Tensor, num_classes: int) -> "Bins":
        q = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
        tertiles = lambda values: tuple(float(v) for v in torch.quantile(values.double(), q))  # noqa: E731
        slant = tertiles(measured["slant"])  # slant reads as a direction, the same for every class
        edges = []
        for k in range(num_classes):
            mine = labels == k
            if not mine.any():
                raise ConfigError(f"the training set has no image of class {k}: every class needs its tertiles")
            edges.append({"thickness": tertiles(measured["thickness"][mine]), "slant": slant,
                          "width": tertiles(measured["width"][mine])})
        return cls(tuple(edges))

    def bin(self, measured: dict[str, Tensor], labels: Tensor) -> Tensor:
        """(N, 3): each attribute's bin among its class."""
        cols = []
        for a in ATTRIBUTES:
            table = torch.tensor([e[a] for e in self.edges], dtype=torch.float64)[labels]  # (N, 2)
            value = measured[a].double()
            cols.append((value >= table[:, 0]).long() + (value >= table[:, 1]).long())
        return torch.stack(cols, dim=1)

    def to_list(self) -> list[dict[str, list[float]]]:
        return [{a: list(e[a]) for a in ATTRIBUTES} for e in self.edges]

    @classmethod
    def from_list(cls, edges: list[dict[str, list[float]]]) -> "Bins":
        return cls(tuple({a: (float(e[a][0]), float(e[a][1])) for a in ATTRIBUTES} for e in edges))


def describe(label: int, bins: Tensor) -> str:
    """'a thick, right-slanted, narrow seven' from a class and its three attribute bins."""
    words = [WORDS[a][int(b)] for a, b in zip(ATTRIBUTES, bins)]
    return f"a {', '.join(words)} {NUMBERS[label]}"


VOCABULARY = tuple(w for a in ATTRIBUTES for w in WORDS[a]) + NUMBERS
EMBEDDING_DIM = 64
WORD_VECTORS = torch.randn(len(VOCABULARY), EMBEDDING_DIM, generator=torch.Generator().manual_seed(0))


def parse(description: str) -> tuple[int, Tensor]:
    """(class, (3,) attribute bins) of a description; every attribute and the digit must be named once. A ConfigError
    names an unknown word and the vocabulary."""
    words = description.replace(",", " ").split()
    if words and words[0] in ("a", "an"):
        words = words[1:]
    found: dict[str, int] = {}
    label = None
    for word in words:
        if word in NUMBERS:
            label = NUMBERS.index(word)
            continue
        owner = next((a for a in ATTRIBUTES if word in WORDS[a]), None)
        if owner is None:
            raise ConfigError(f"description {description!r}: unknown word {word!r}; the vocabulary: "
                              + "; ".join(f"{a}: {', '.join(WORDS[a])}" for a in ATTRIBUTES)
                              + f"; digits: {', '.join(NUMBERS)}")
        found[owner] = WORDS[owner].index(word)
    missing = [a for a in ATTRIBUTES if a not in found] + (["digit"] if label is None else [])
    if missing:
        raise ConfigError(f"description {description!r} does not say its {', '.join(missing)}: a description names "
                          f"a thickness, a slant, a width and a digit, e.g. 'a thick, right-slanted, narrow seven'")
    return label, torch.tensor([found[a] for a in ATTRIBUTES])


def bag_of_words(labels: Tensor, bins: Tensor) -> Tensor:
    """(N, len(VOCABULARY)): a 1 at each word of each description."""
    out = torch.zeros(len(labels), len(VOCABULARY), device=labels.device)
    rows = torch.arange(len(labels), device=labels.device)
    for i, a in enumerate(ATTRIBUTES):
        out[rows, VOCABULARY.index(WORDS[a][0]) + bins[:, i]] = 1.0
    out[rows, VOCABULARY.index(NUMBERS[0]) + labels] = 1.0
    return out


def embed(labels: Tensor, bins: Tensor) -> Tensor:
    """(N, EMBEDDING_DIM): the sum of each description's word vectors."""
    return bag_of_words(labels, bins) @ WORD_VECTORS.to(labels.device)
