"""Wide features narrowed for the measures that fit models on them (PAD's linear SVM; the validators' DEV
density ratio, reverse classifier and class-AMI clustering).

AlexNet's and ResNet's features are 2,048–4,096 wide: on a few thousand samples a linear SVM or logistic
regression then takes minutes to converge per fit (liblinear's dual coordinate descent and lbfgs both scale
with the width), and PACS evaluation spent 90 % of its time there. Features wider than `WIDE` are projected
onto their top `COMPONENTS` principal directions, fitted without any label on all the arrays the measure
uses; narrower ones (every digit network's) are left as they are. A linear classifier on the projection is
a linear classifier on the features, so the measures keep their meaning; a domain classifier can only
become slightly more conservative (it sees less than the full width). The fit runs in float32, which
halves its time; its projections are returned in float64.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

WIDE = 1024
COMPONENTS = 256


def narrowed(*arrays: np.ndarray, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The arrays as float64, projected together onto COMPONENTS principal directions when wider than WIDE."""
    width, n = arrays[0].shape[1], sum(len(a) for a in arrays)
    if width <= WIDE:
        return tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    pca = PCA(n_components=min(COMPONENTS, n - 1), svd_solver="randomized", random_state=seed)
    pca.fit(np.concatenate(arrays).astype(np.float32))
    return tuple(pca.transform(np.asarray(a, dtype=np.float32)).astype(np.float64) for a in arrays)
