"""Bradley-Terry labelling, label noise and the Bayes-optimal accuracy, worked by hand."""

import math

import numpy as np
import pytest

from prefopt.tasks.preferences import bayes_accuracy, bradley_terry_prob, noisy_labels


def test_bradley_terry_prob():
    got = bradley_terry_prob(np.array([0.25, 0.0, -0.5]), 0.25)
    np.testing.assert_allclose(got, [1 / (1 + math.exp(-1)), 0.5, 1 / (1 + math.exp(2))])
    np.testing.assert_array_equal(bradley_terry_prob(np.array([0.1, 0.0, -2.0]), 0.0), [1, 0.5, 0])
    with pytest.raises(ValueError):
        bradley_terry_prob(np.array([1.0]), -1.0)


def test_bayes_accuracy():
    prob = np.array([0.9, 0.2, 0.5])
    # q = 0.9, 0.8, 0.5; with f = 0.1: 0.9*q + 0.1*(1-q) = 0.82, 0.74, 0.5
    assert bayes_accuracy(prob, 0.1) == pytest.approx((0.82 + 0.74 + 0.5) / 3)
    assert bayes_accuracy(prob, 0.0) == pytest.approx((0.9 + 0.8 + 0.5) / 3)


def test_noisy_labels_rates():
    rng = np.random.default_rng(0)
    certain = np.ones(20000)
    labels, flips = noisy_labels(rng, certain, 0.2)
    np.testing.assert_array_equal(labels, ~flips)
    assert abs(flips.mean() - 0.2) < 0.01
    labels, _ = noisy_labels(rng, np.full(20000, 0.7), 0.0)
    assert abs(labels.mean() - 0.7) < 0.01
    with pytest.raises(ValueError, match="flip_rate"):
        noisy_labels(rng, certain, 0.6)
