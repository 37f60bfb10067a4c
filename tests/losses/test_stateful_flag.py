"""``stateful`` holds: a built loss says whether its state_dict (saved in checkpoints) holds state."""

import pytest
import torch

from prefopt.losses import LossOutput, PairedLogps, PreferenceLoss, available_losses, build_loss
from prefopt.losses.registry import build_loss_from_config


class _Counting(PreferenceLoss):
    """L = rejected_logps - chosen_logps, counting its calls in a buffer."""

    name = "counting"
    requires_reference = False
    data_format = "paired"
    stateful = False  # wrong: the buffer below is state
    min_batch_size = 1

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def compute(self, inputs: PairedLogps) -> LossOutput:
        self.calls += 1
        return LossOutput(
            inputs.rejected_logps - inputs.chosen_logps,
            inputs.chosen_logps,
            inputs.rejected_logps,
            {},
        )


class _Stateless(_Counting):
    """Claims state it does not keep."""

    name = "stateless"
    requires_reference = False
    data_format = "paired"
    stateful = True
    min_batch_size = 1

    def __init__(self) -> None:
        PreferenceLoss.__init__(self)


@pytest.mark.parametrize("name", available_losses())
def test_every_registered_loss_declares_its_state(name):
    loss = build_loss(name)
    assert loss.stateful == bool(loss.state_dict())


def test_a_loss_with_undeclared_state_is_refused():
    with pytest.raises(
        ValueError, match=r"_Counting.stateful is False, but its state_dict holds calls"
    ):
        build_loss_from_config({"_target_": f"{__name__}._Counting"})
    with pytest.raises(
        ValueError, match=r"_Stateless.stateful is True, but its state_dict holds nothing"
    ):
        build_loss_from_config({"_target_": f"{__name__}._Stateless"})
