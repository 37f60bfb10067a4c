"""The comparison the RL tests use: a tensor against values worked out by hand."""

import torch

RTOL, ATOL = 1e-6, 1e-6  # fp32 rounding of hand-sized numbers; formula errors move them by 1e-3+


def assert_values(actual: torch.Tensor, expected) -> None:
    """``actual`` equals the (nested) list or number ``expected`` to fp32 rounding."""
    torch.testing.assert_close(
        actual.detach().double(), torch.tensor(expected, dtype=torch.float64), rtol=RTOL, atol=ATOL
    )
