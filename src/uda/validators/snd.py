"""Soft neighbourhood density (Saito, Kim, Teterwak, Sclaroff, Darrell, Saenko, "Tune it the Right Way:
Unsupervised Validation of Domain Adaptation via Soft Neighborhood Density", ICCV 2021, eq. 1-3).

On L2-normalised target predictions p_i, the similarities s_ij = p_i·p_j (j ≠ i) become a distribution
over neighbours by a softmax at temperature τ = 0.05; SND is the mean entropy of those distributions:
high when each image has many close neighbours, i.e. target predictions form dense clusters."""

from __future__ import annotations

import numpy as np

from uda.validators.base import Labelled, Unlabelled, entropies

TEMPERATURE = 0.05


def snd(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    p = target.probs.astype(np.float64)
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = p @ p.T / TEMPERATURE
    np.fill_diagonal(sim, -np.inf)  # no image is its own neighbour
    sim = sim - sim.max(1, keepdims=True)
    q = np.exp(sim)
    q /= q.sum(1, keepdims=True)
    return float(entropies(q).mean())


VALIDATOR = snd
