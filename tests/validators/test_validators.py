"""Each validator on constructed inputs whose answer is known (tests mirror src/uda/validators)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from uda.validators import VALIDATORS, Labelled, Unlabelled, score_all
from uda.validators.dev import dev_risk

K, N, D = 4, 400, 8
rng = np.random.default_rng(0)
LABELS = np.arange(N) % K
CENTRES = 5 * rng.normal(size=(K, D))


def one_hot_logits(classes: np.ndarray, scale: float) -> np.ndarray:
    return scale * np.eye(K)[classes]


def clustered() -> np.ndarray:
    """Features in one tight cluster per class."""
    return CENTRES[LABELS] + 0.1 * rng.normal(size=(N, D))


def scattered() -> np.ndarray:
    return rng.normal(size=(N, D))


def source(features: np.ndarray | None = None, scale: float = 8.0) -> Labelled:
    f = clustered() if features is None else features
    return Labelled(f, one_hot_logits(LABELS, scale), LABELS)


def score(name: str, target: Unlabelled, source_split: Labelled | None = None) -> float:
    s = source_split or source()
    return VALIDATORS[name](s, s, target, 0)


@pytest.mark.parametrize("name", ["entropy", "im", "bnm"])
def test_confident_balanced_predictions_beat_uniform_ones(name):
    confident = Unlabelled(clustered(), one_hot_logits(LABELS, 8.0))
    uniform = Unlabelled(clustered(), np.zeros((N, K)))
    assert score(name, confident) > score(name, uniform)


@pytest.mark.parametrize("name", ["im", "bnm"])
def test_and_balanced_beats_confident_but_collapsed(name):
    balanced = Unlabelled(clustered(), one_hot_logits(LABELS, 8.0))
    collapsed = Unlabelled(clustered(), one_hot_logits(np.zeros(N, dtype=int), 8.0))  # one class for all
    assert score(name, balanced) > score(name, collapsed)


def test_snd_prefers_predictions_in_dense_clusters():
    dense = Unlabelled(clustered(), one_hot_logits(LABELS, 8.0) + 0.05 * rng.normal(size=(N, K)))
    spread = Unlabelled(clustered(), 3 * rng.normal(size=(N, K)))
    assert score("snd", dense) > score("snd", spread)


def test_class_ami_prefers_features_clustered_as_the_predictions():
    logits = one_hot_logits(LABELS, 8.0)
    assert score("class_ami", Unlabelled(clustered(), logits)) > 0.9
    assert score("class_ami", Unlabelled(scattered(), logits)) < 0.1


def test_reverse_validation_ranks_shuffled_outputs_below_good_ones():
    good = Unlabelled(clustered(), one_hot_logits(LABELS, 8.0))
    shuffled = Unlabelled(clustered(), one_hot_logits(rng.permutation(LABELS), 8.0))
    assert score("reverse", good) > 0.95 > 0.5 > score("reverse", shuffled)


def test_source_val_is_the_accuracy_and_dev_the_plain_mean_risk_when_the_ratio_is_one():
    wrong = one_hot_logits(LABELS, 8.0)
    wrong[:100] = one_hot_logits((LABELS[:100] + 1) % K, 8.0)
    val = Labelled(clustered(), wrong, LABELS)
    assert VALIDATORS["source_val"](val, val, Unlabelled(val.features, val.logits), 0) == pytest.approx(0.75)
    losses = rng.exponential(size=300)
    assert dev_risk(losses, np.ones(300)) == pytest.approx(losses.mean())


def test_every_validator_takes_unlabelled_target_data_and_returns_a_finite_score():
    for name, fn in VALIDATORS.items():
        params = inspect.signature(fn).parameters
        assert list(params) == ["source_train", "source_val", "target", "seed"], name
        assert params["target"].annotation in ("Unlabelled", Unlabelled), name
    assert not hasattr(Unlabelled(np.zeros((1, 1)), np.zeros((1, 1))), "labels")
    scores = score_all(source(), source(), Unlabelled(clustered(), one_hot_logits(LABELS, 8.0)), 0)
    assert set(scores) == set(VALIDATORS) and all(np.isfinite(v) for v in scores.values())
