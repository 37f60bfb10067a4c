"""Online DPO's Bradley-Terry labels of two scored samples, worked out by hand."""

import math

import torch

from prefopt.online.pairs import bradley_terry_labels


def test_temperature_zero_prefers_the_higher_score_and_skips_ties():
    scores = torch.tensor([[1.0, 0.5], [0.2, 0.7], [0.3, 0.3]], dtype=torch.float64)
    labels = bradley_terry_labels(scores, torch.zeros(3, dtype=torch.float64), 0.0)
    assert labels.tolist() == [1, -1, 0]


def test_labels_follow_sigmoid_of_the_gap_over_the_temperature():
    # gap 0.5 at T 0.25: P(first) = sigmoid(2) = 0.8808; a uniform below it labels first, above second
    p = 1 / (1 + math.exp(-2.0))
    scores = torch.tensor([[1.0, 0.5]] * 2 + [[0.5, 1.0]], dtype=torch.float64)
    uniforms = torch.tensor([p - 1e-3, p + 1e-3, 0.1], dtype=torch.float64)
    # third pair: gap -0.5, P(first) = 1 - p = 0.1192 > 0.1, so the lower-scored first wins
    assert bradley_terry_labels(scores, uniforms, 0.25).tolist() == [1, -1, 1]


def test_a_tie_is_never_labelled_at_any_temperature():
    scores = torch.tensor([[0.4, 0.4]], dtype=torch.float64)
    assert bradley_terry_labels(scores, torch.tensor([0.0], dtype=torch.float64), 1.0).tolist() == [
        0
    ]
