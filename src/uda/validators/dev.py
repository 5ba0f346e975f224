"""Deep Embedded Validation (DEV).

You, Wang, Long, Wang, Jordan, "Towards Accurate Model Selection in Deep Unsupervised Domain Adaptation",
ICML 2019, Algorithm 1. The target risk of a model is estimated on labelled *source validation* data,
importance-weighted by the density ratio w(x) = p_t(x)/p_s(x) in the model's feature space, and the
variance of that estimate is cut with a control variate (E[w] = 1):

    w(x)  = N_s/N_t · d(x)/(1 − d(x)),   d = P(target | F(x)) from a domain classifier on features
    L     = w ⊙ ℓ(C(F(x_val)), y_val),   η = −Cov(L, w)/Var(w)
    R_DEV = mean(L) + η·mean(w) − η

The score is −R_DEV (higher is better). The domain classifier is an L2-regularised logistic regression
(the paper uses a small MLP), fitted on features of source *train* images against target images and
evaluated on the held-out source validation split. Target labels never enter.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from uda.validators.base import Labelled, Unlabelled


def density_ratio(f_s_train: np.ndarray, f_t: np.ndarray, f_val: np.ndarray, seed: int = 0) -> np.ndarray:
    """w(x) = p_t/p_s at each validation feature, from a classifier of source-train vs target features."""
    x = np.concatenate([f_s_train, f_t]).astype(np.float64)
    d = np.concatenate([np.zeros(len(f_s_train)), np.ones(len(f_t))])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    clf.fit(x, d)
    p = np.clip(clf.predict_proba(f_val.astype(np.float64))[:, 1], 1e-4, 1 - 1e-4)
    return (len(f_s_train) / len(f_t)) * p / (1 - p)


def dev_risk(losses: np.ndarray, weights: np.ndarray) -> float:
    """R_DEV from per-sample validation losses and their density ratios (control variate included)."""
    weighted = weights * losses
    var_w = weights.var(ddof=1)
    eta = -np.cov(weighted, weights, ddof=1)[0, 1] / var_w if var_w > 0 else 0.0
    risk = float(weighted.mean() + eta * weights.mean() - eta)
    return risk if np.isfinite(risk) else float("inf")  # a model whose losses overflow is the worst candidate


def cross_entropies(v: Labelled) -> np.ndarray:
    z = v.logits - v.logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_p[np.arange(len(v.labels)), v.labels]


def dev(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    w = density_ratio(source_train.features, target.features, source_val.features, seed)
    return -dev_risk(cross_entropies(source_val), w)


VALIDATOR = dev
