"""Information maximisation: H(mean_i p(x_i)) − mean_i H(p(x_i)) over target images, the mutual
information between images and predicted classes (Gomes, Krause, Perona, NeurIPS 2010; as a validator in
Musgrave et al., 2022): confident *and* class-balanced predictions score high."""

from __future__ import annotations

from uda.validators.base import Labelled, Unlabelled, entropies


def im(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    p = target.probs
    return float(entropies(p.mean(0, keepdims=True))[0] - entropies(p).mean())


VALIDATOR = im
