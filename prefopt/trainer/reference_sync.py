"""TR-DPO's moving reference: every k optimiser steps, pi_ref <- α pi + (1 - α) pi_ref.

Gorbatovski et al., Learn Your Reference Model for Real Good Alignment, arXiv 2404.09656. The
paper's soft update (its TR-DPO^α) mixes the policy's weights into the reference's every
``trainer.reference_sync_every`` = τ steps with ``trainer.reference_sync_alpha`` = α; α = 1 is its
hard update (TR-DPO^τ: pi_ref becomes the policy). As TRL 1.16's ``sync_ref_model`` with
``ref_model_mixup_alpha`` and ``ref_model_sync_steps``: the update runs after the optimiser step
whose number is a multiple of τ. Any loss that reads a reference can use it (the paper applies it to
DPO, IPO and KTO).

The training reference is a frozen copy of its own: held-out rewards, the win rate's pi_ref samples
and the KL keep measuring against the original pi_ref, so every logged metric means what it means
without the update. The copy's weights go into each checkpoint, so a resumed run continues with the
reference it had.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefopt.trainer.reference import LiveReference


@dataclass
class ReferenceSync:
    """The step hook that moves ``reference`` towards the policy; its state is the weights."""

    reference: LiveReference  # the training reference: a frozen copy of pi_ref of its own
    every: int  # τ >= 1: optimiser steps between updates
    alpha: float  # α in [0, 1]: the policy's share of the updated weights

    def __call__(self, trainer, row: dict) -> None:
        """After step ``trainer.state.step``: update when it is a multiple of ``every``."""
        if trainer.state.step % self.every == 0:
            policy = trainer.acc.unwrap_model(trainer.policy)
            self.reference.update_from(policy, self.alpha)

    def state_dict(self) -> dict:
        """The moved reference's weights."""
        return {"weights": self.reference.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the weights a checkpoint saved."""
        self.reference.model.load_state_dict(state["weights"])
