"""prefopt.rl.masks: lengths of right-padded masks and masked mean and variance."""

import pytest
import torch

from prefopt.rl.masks import masked_mean, masked_var, response_lengths


def test_lengths_of_a_right_padded_mask():
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert response_lengths(mask).tolist() == [3, 1, 2]


def test_masked_mean_and_unbiased_variance_ignore_padding():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, float("nan"), float("inf")]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    mean = (1.0 + 2.0 + 3.0 + 4.0) / 4
    var = ((1 - mean) ** 2 + (2 - mean) ** 2 + (3 - mean) ** 2 + (4 - mean) ** 2) / (4 - 1)
    assert masked_mean(values, mask).item() == pytest.approx(mean)
    assert masked_var(values, mask).item() == pytest.approx(var)  # 5/3


def test_variance_of_one_entry_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        masked_var(torch.tensor([[1.0, 2.0]]), torch.tensor([[True, False]]))


def test_a_three_dimensional_mask_is_refused():
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        response_lengths(torch.ones(1, 2, 3, dtype=torch.bool))
