"""Label-free validators: each scores a trained model from what it may see, and higher is better.

A validator is one file here defining `VALIDATOR`, a function named after the file, of
`(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float`. Target data
reaches it as `Unlabelled`, which has no labels to read: a target-label leak would have to show in the
signature. `evaluate.validator` names the one that picks the snapshot evaluation reports.
"""

from __future__ import annotations

import numpy as np

from uda.registry import collect
from uda.validators.base import Labelled, Unlabelled, Validator, entropies

VALIDATORS: dict[str, Validator] = collect(__name__, __path__, "VALIDATOR", lambda fn: fn.__name__, skip=("base",))


def score_all(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> dict[str, float]:
    """Every validator's score of one model (a score that is not finite counts as the worst)."""
    out = {}
    for name, fn in VALIDATORS.items():
        s = float(fn(source_train, source_val, target, seed))
        out[name] = s if np.isfinite(s) else -np.inf
    return out


__all__ = ["VALIDATORS", "Labelled", "Unlabelled", "entropies", "score_all"]
