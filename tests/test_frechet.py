"""Fréchet distance against closed forms, covariance conventions, and the TF1-legacy resize."""

import jax.numpy as jnp
import numpy as np
import pytest

from mav_jax.eval.frechet import FeatureStats, frechet_distance
from mav_jax.eval.resize import tf1_bilinear_resize, tf1_interpolation_matrix


def _stats(features, convention="unbiased"):
    stats = FeatureStats(features.shape[1])
    for chunk in np.array_split(features, 3):  # accumulating in pieces changes nothing
        stats.update(chunk)
    return stats.mean(), stats.covariance(convention)


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).normal(size=(50, 6))
    mu, sigma = _stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_gaussians():
    m1, s1, m2, s2 = 0.3, 1.7, -1.1, 0.4
    d = frechet_distance([m1], [[s1**2]], [m2], [[s2**2]])
    assert d == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12)


def test_scaled_identities():
    dim, a, b = 7, 2.5, 0.3
    d = frechet_distance(np.zeros(dim), a * np.eye(dim), np.zeros(dim), b * np.eye(dim))
    assert d == pytest.approx(dim * (np.sqrt(a) - np.sqrt(b)) ** 2, rel=1e-12)


def test_shifting_one_set_adds_the_squared_shift_and_distance_is_symmetric():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(60, 5)) * 1.5 + 0.2
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.1])
    base = frechet_distance(*_stats(x), *_stats(y))
    shifted = frechet_distance(*_stats(x + shift), *_stats(y))
    mu_x, mu_y = x.mean(0), y.mean(0)
    expected_change = np.sum((mu_x + shift - mu_y) ** 2) - np.sum((mu_x - mu_y) ** 2)
    assert shifted - base == pytest.approx(expected_change, rel=1e-9)
    assert frechet_distance(*_stats(y), *_stats(x)) == pytest.approx(base, rel=1e-9)
    # The pure-translation case the invariant states: the same set, shifted by c, is |c|^2 away.
    assert frechet_distance(*_stats(x + shift), *_stats(x)) == pytest.approx(
        shift @ shift, rel=1e-9
    )


def test_finite_and_real_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 64)), rng.normal(size=(6, 64)) + 1.0  # rank-deficient covariances
    d = frechet_distance(*_stats(x), *_stats(y))
    assert np.isfinite(d) and d > 0
    assert isinstance(d, float)


def test_covariance_conventions():
    x = np.random.default_rng(3).normal(size=(30, 4))
    np.testing.assert_allclose(
        _stats(x, "unbiased")[1], np.cov(x, rowvar=False, ddof=1), atol=1e-12
    )
    np.testing.assert_allclose(_stats(x, "biased")[1], np.cov(x, rowvar=False, ddof=0), atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats(4).covariance()
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        FeatureStats(4).update(np.zeros((3, 5)))


def test_tf1_legacy_downsampling_matches_hand_computed_values():
    # 4 -> 3: scale 4/3; outputs sample x = 0, 4/3, 8/3 (no half-pixel offset).
    row = jnp.array([10.0, 20.0, 40.0, 80.0])
    image = jnp.broadcast_to(row[None, :, None], (1, 4, 1))  # (H=1, W=4, C=1)
    out = tf1_bilinear_resize(image, (1, 3))[0, :, 0]
    np.testing.assert_allclose(
        out, [10.0, 20.0 + (40.0 - 20.0) / 3, 40.0 + (80.0 - 40.0) * 2 / 3], rtol=1e-6
    )


def test_tf1_legacy_upsampling_clamps_at_the_last_pixel():
    # 2 -> 4: scale 0.5; x = 0, 0.5, 1, 1.5 -> [a, (a+b)/2, b, b]: the last output does not
    # extrapolate (half_pixel_centers=True would give [a, a+(b-a)/4, ...] instead).
    image = jnp.array([[0.0, 100.0]])[..., None]  # (1, 2, 1)
    np.testing.assert_allclose(tf1_bilinear_resize(image, (1, 4))[0, :, 0], [0, 50, 100, 100])
    weights = tf1_interpolation_matrix(2, 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_resize_is_separable_over_rows_and_columns():
    rng = np.random.default_rng(4)
    video = rng.integers(0, 256, size=(2, 3, 5, 7, 3)).astype(np.uint8)  # (B, T, H, W, C)
    out = np.asarray(tf1_bilinear_resize(video, (9, 4)))
    rows, cols = tf1_interpolation_matrix(5, 9), tf1_interpolation_matrix(7, 4)
    expected = np.einsum("oh,pw,bthwc->btopc", rows, cols, video.astype(np.float64))
    assert out.shape == (2, 3, 9, 4, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)
