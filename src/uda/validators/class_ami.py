"""ClassAMI (Musgrave, Belongie, Lim, "Three New Validators and a Large-Scale Benchmark Ranking for
Unsupervised Domain Adaptation", 2022, §3): the adjusted mutual information between a k-means clustering
of the target features (k = the number of classes, features L2-normalised) and the predicted classes.
High when the classifier's decisions follow the clusters of the feature space."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score

from uda.validators.base import Labelled, Unlabelled


def class_ami(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    f = target.features.astype(np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    k = target.logits.shape[1]
    clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(f)
    return float(adjusted_mutual_info_score(clusters, target.logits.argmax(1)))


VALIDATOR = class_ami
