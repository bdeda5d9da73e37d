"""Feature statistics accumulated in float64 on the host, and the Fréchet distance between them.

d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)

The trace term is computed from symmetric eigendecompositions (negative eigenvalues from round-off
clipped to 0), so it stays real and finite for rank-deficient covariances, e.g. fewer videos than
feature dimensions, where scipy's general `sqrtm` can return complex or NaN values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

COVARIANCE_CONVENTIONS = ("unbiased", "biased")  # original TF FVD code; StyleGAN-V


@dataclasses.dataclass
class FeatureStats:
    """Running count, sum and sum of outer products of feature vectors (float64)."""

    dim: int
    count: int = 0
    total: np.ndarray | None = None
    outer: np.ndarray | None = None

    def __post_init__(self):
        if self.total is None:
            self.total = np.zeros(self.dim, np.float64)
        if self.outer is None:
            self.outer = np.zeros((self.dim, self.dim), np.float64)

    def update(self, features) -> None:
        features = np.asarray(features, np.float64)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"Features must be (N, {self.dim}), got {features.shape}.")
        self.count += features.shape[0]
        self.total += features.sum(axis=0)
        self.outer += features.T @ features

    def mean(self) -> np.ndarray:
        self._need(1)
        return self.total / self.count

    def covariance(self, convention: str = "unbiased") -> np.ndarray:
        if convention not in COVARIANCE_CONVENTIONS:
            raise ValueError(f"Covariance convention must be one of {COVARIANCE_CONVENTIONS}.")
        self._need(2)
        mean = self.mean()
        scatter = self.outer - self.count * np.outer(mean, mean)
        cov = scatter / (self.count - 1 if convention == "unbiased" else self.count)
        return (cov + cov.T) / 2

    def _need(self, n: int) -> None:
        if self.count < n:
            raise ValueError(f"Need at least {n} feature vectors, have {self.count}.")


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"Mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances "
            f"{sigma1.shape} / {sigma2.shape}."
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))
