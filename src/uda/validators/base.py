"""What every validator takes: a model's outputs on labelled source and unlabelled target samples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Unlabelled:
    """A model's outputs on a sample of a domain: features (N×d) and class logits (N×K)."""

    features: np.ndarray
    logits: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        z = self.logits - self.logits.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)


@dataclass(frozen=True)
class Labelled(Unlabelled):
    """The same with the true labels (N,): source data only."""

    labels: np.ndarray


def entropies(p: np.ndarray) -> np.ndarray:
    """H(p) per row, in nats."""
    return -(p * np.log(p + 1e-12)).sum(1)


Validator = Callable[[Labelled, Labelled, Unlabelled, int], float]
