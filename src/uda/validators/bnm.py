"""Batch nuclear norm: ‖P‖_* / N of the N×K matrix of target predictions (Cui et al., "Towards
Discriminability and Diversity: Batch Nuclear-norm Maximization under Label Insufficient Situations",
CVPR 2020, eq. 6). Its nuclear norm is large when predictions are both confident and diverse."""

from __future__ import annotations

import numpy as np

from uda.validators.base import Labelled, Unlabelled


def bnm(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    p = target.probs.astype(np.float64)
    return float(np.linalg.svd(p, compute_uv=False).sum() / len(p))


VALIDATOR = bnm
