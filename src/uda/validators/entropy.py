"""Prediction entropy: −mean_i H(p(x_i)) over target images (confident predictions score higher; the
criterion entropy-minimising methods optimise, so it flatters them)."""

from __future__ import annotations

from uda.validators.base import Labelled, Unlabelled, entropies


def entropy(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    return -float(entropies(target.probs).mean())


VALIDATOR = entropy
