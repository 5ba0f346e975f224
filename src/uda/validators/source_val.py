"""Source validation accuracy: the model's accuracy on the labelled source carve-out (the usual baseline,
blind to the shift)."""

from __future__ import annotations

from uda.validators.base import Labelled, Unlabelled


def source_val(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    return float((source_val.logits.argmax(1) == source_val.labels).mean())


VALIDATOR = source_val
