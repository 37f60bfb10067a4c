"""Preference losses behind one interface, and the registry that builds them by name or config.

from prefopt.losses import build_loss, PairedLogps
loss = build_loss("dpo", beta=0.1)
out = loss(PairedLogps(chosen_logps, rejected_logps, chosen_lengths, rejected_lengths,
                       ref_chosen_logps, ref_rejected_logps))
out.losses.mean().backward()
"""

from prefopt.losses import (  # noqa: F401  (importing a loss module registers it)
    aot,
    apo,
    bco_pair,
    cpo,
    csft,
    discopop,
    dpo,
    dpop,
    exo_pair,
    hinge,
    ipo,
    kto,
    kto_pair,
    ld_dpo,
    nca_pair,
    orpo,
    r_dpo,
    robust,
    sft,
    sigmoid_norm,
    simpo,
    slic,
    sppo_hard,
    unlikelihood,
    wpo,
)
from prefopt.losses.base import (
    CAPABILITY_FLAGS,
    LossOutput,
    PairedLogps,
    PreferenceLoss,
    ResponseTokens,
    UnpairedLogps,
)
from prefopt.losses.combined import CombinedLoss
from prefopt.losses.registry import (
    ENTRY_POINT_GROUP,
    available_losses,
    build_loss,
    build_loss_from_config,
    check_loss_class,
    describe_losses,
    loss_class,
    register_loss,
)

__all__ = [
    "CAPABILITY_FLAGS",
    "ENTRY_POINT_GROUP",
    "CombinedLoss",
    "LossOutput",
    "PairedLogps",
    "PreferenceLoss",
    "ResponseTokens",
    "UnpairedLogps",
    "available_losses",
    "build_loss",
    "build_loss_from_config",
    "check_loss_class",
    "describe_losses",
    "loss_class",
    "register_loss",
]
