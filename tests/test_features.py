"""uda.features: wide features reach the fitted measures on their principal directions, narrow ones as they are."""

import numpy as np

from uda.domain_gap import domain_classifier_error
from uda.features import COMPONENTS, WIDE, narrowed


def test_narrow_features_pass_unchanged_as_float64():
    a = np.random.default_rng(0).normal(size=(50, WIDE)).astype(np.float32)
    (out,) = narrowed(a)
    assert out.dtype == np.float64 and np.array_equal(out, a.astype(np.float64))


def test_wide_features_are_projected_jointly_and_deterministically():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2 * WIDE)), rng.normal(size=(200, 2 * WIDE))
    pa, pb = narrowed(a, b, seed=1)
    assert pa.shape == (300, COMPONENTS) and pb.shape == (200, COMPONENTS)
    assert np.allclose(narrowed(a, b, seed=1)[0], pa, atol=1e-5)
    # the projection is centred on the two arrays together, not on each one
    assert np.abs(np.concatenate([pa, pb]).mean(0)).max() < 1e-3


def test_a_domain_shift_along_one_direction_survives_the_projection():
    """A shift that a linear classifier sees in 4,096 dimensions is still seen after narrowing."""
    rng = np.random.default_rng(0)
    f_s, f_t = rng.normal(size=(400, 4096)), rng.normal(size=(400, 4096))
    f_t[:, 7] += 6.0
    assert domain_classifier_error(f_s, f_t, cs=(0.1,)) < 0.15  # chance is 0.5
    same = domain_classifier_error(f_s, rng.normal(size=(400, 4096)), cs=(0.1,))
    assert same > 0.3  # two samples of one distribution stay indistinguishable
