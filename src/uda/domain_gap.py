"""How far apart two domains' features are: a domain classifier's held-out accuracy and the proxy A-distance.

Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016, §5.1.5 (after Ben-David et al.,
2007): train a linear SVM to tell source features from target features on one half of the data, take its
error ε on the other half, and report PAD = 2(1 − 2ε). Separable features give PAD → 2, indistinguishable
ones PAD → 0. Only domain labels are involved, never class labels.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from uda.features import narrowed


def domain_classifier_error(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0,
                            cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)) -> float:
    """Held-out error of a linear SVM (C chosen by 3-fold CV on the training half) separating f_s from f_t
    (wide features on their principal directions first, uda.features)."""
    x = np.concatenate(narrowed(f_s, f_t, seed=seed))
    d = np.concatenate([np.zeros(len(f_s)), np.ones(len(f_t))])
    x_tr, x_te, d_tr, d_te = train_test_split(x, d, test_size=0.5, random_state=seed, stratify=d)
    svm = make_pipeline(StandardScaler(), LinearSVC(dual="auto", max_iter=5000, random_state=seed))
    search = GridSearchCV(svm, {"linearsvc__C": list(cs)}, cv=3)
    search.fit(x_tr, d_tr)
    return float(1.0 - search.score(x_te, d_te))


def proxy_a_distance(error: float) -> float:
    """PAD = 2(1 − 2ε), with ε capped at 0.5: a classifier worse than chance says the domains match."""
    return 2.0 * (1.0 - 2.0 * min(error, 0.5))
