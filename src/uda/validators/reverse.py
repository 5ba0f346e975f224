"""Reverse validation (Zhong, Fan, Yang, Verscheure, Ren, "Cross Validation Framework to Choose amongst
Models and Datasets for Transfer Learning", ECML PKDD 2010), as the DANN paper used it to choose
hyperparameters (Ganin et al., JMLR 2016, §5.1.2): pseudo-label the target with the model, train a reverse
classifier on the pseudo-labelled target, and score it on the labelled source validation split.

The DANN paper trains a reverse *network* (with adaptation back to the source); here the reverse
classifier is a logistic regression on the model's target features, so that scoring a checkpoint costs
seconds. A model whose target predictions are inconsistent with its features gives a poor reverse
classifier."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from uda.validators.base import Labelled, Unlabelled


def reverse(source_train: Labelled, source_val: Labelled, target: Unlabelled, seed: int) -> float:
    pseudo = target.logits.argmax(1)
    if len(np.unique(pseudo)) < 2:  # one predicted class: nothing to learn back
        return float((source_val.labels == pseudo[0]).mean())
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500, random_state=seed))
    clf.fit(target.features.astype(np.float64), pseudo)
    return float((clf.predict(source_val.features.astype(np.float64)) == source_val.labels).mean())


VALIDATOR = reverse
