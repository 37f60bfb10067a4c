"""The TRL parity cases: each TRL 1.16 loss, its TRL settings and the prefopt loss that computes it.

One row per case. ``trainer`` names TRL's trainer that runs the loss (``dpo``: DPOTrainer, ``cpo``:
the experimental CPOTrainer, ``kto``: KTOTrainer, ``orpo``: the experimental ORPOTrainer);
``trl_args`` are that trainer's config fields which select and set the loss; ``loss`` is the prefopt
loss config (``{"name": ..., hyperparameters}``, or a ``combined`` one) at the same values.
``compare`` lists what both sides must agree on: ``loss`` (the batch's mean loss), ``rewards`` (the
mean chosen and rejected rewards TRL logs and prefopt's loss returns) and ``grad`` (the gradient of
the loss with respect to every policy parameter). ``metrics`` maps a metric TRL logs to the prefopt
loss metric that holds the same number. ``batch`` picks the preference pairs: ``varied`` (prompts and
responses of different lengths) or ``uniform_chosen`` (one-token prompts, chosen responses of one
length), where a TRL NLL term averaged over the batch's tokens equals prefopt's per-example mean.
``differs`` says what the two sides do differently on purpose and how the case compares around it.

Hyperparameter names, TRL -> prefopt: ``beta`` -> ``beta`` (every loss); ``label_smoothing`` ->
``label_smoothing`` (robust, exo_pair, aot); ``f_divergence_type`` / ``f_alpha_divergence_coef`` ->
``dpo``'s ``f_divergence`` / ``f_alpha``; ``use_weighting=True`` -> the loss ``wpo``; ``ld_alpha`` ->
the loss ``ld_dpo``'s ``ld_alpha``; ``discopop_tau`` -> ``discopop``'s ``tau``;
``loss_type=["sigmoid", "sft"]`` with ``loss_weights=[1, a]`` (RPO) -> ``combined`` dpo + a * sft;
CPO's ``simpo_gamma`` -> ``simpo``'s ``gamma``, ``cpo_alpha`` -> ``cpo``'s ``cpo_alpha`` (with
``loss_type="simpo"``: ``simpo``'s ``nll_weight``), ``alpha``
(AlphaPO) -> ``simpo``'s ``alpha``; KTO's ``desirable_weight`` / ``undesirable_weight`` -> the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One TRL loss against the prefopt loss at the mapped hyperparameters."""

    id: str  # the test id
    trainer: str  # TRL's trainer: dpo, cpo, kto or orpo
    trl_args: dict  # TRL config fields that select and set the loss
    loss: dict  # prefopt loss config: {"name": ..., hyperparameters}
    compare: tuple[str, ...] = ("loss", "rewards", "grad")  # what must agree
    metrics: dict = field(default_factory=dict)  # TRL logged metric -> prefopt loss metric
    batch: str = "varied"  # the preference pairs: varied or uniform_chosen
    differs: str = ""  # what differs on purpose, and what is compared instead


def dpo(loss_type: str, loss: dict, beta: float = 0.5, **case) -> Case:
    """A DPOTrainer case of one ``loss_type`` at ``beta`` (also set in the prefopt loss)."""
    trl_args = {"loss_type": [loss_type], "beta": beta, **case.pop("trl_args", {})}
    return Case(
        id=case.pop("id", loss_type),
        trainer="dpo",
        trl_args=trl_args,
        loss={"beta": beta, **loss},
        **case,
    )


NLL_AVERAGED_OVER_TOKENS = (
    "TRL's NLL term averages over every chosen token of the batch, prefopt's over each example's "
    "tokens: equal on chosen responses of one length"
)
REWARDS_UNNORMALISED = (
    "TRL logs beta times the summed log-ratios as rewards for every DPOTrainer loss; prefopt's "
    "rewards are the per-token averages the loss uses, so rewards are not compared"
)

# KTOTrainer's losses: the same names on both sides.
UNPAIRED_HYPERPARAMETERS = {"beta": 0.5, "desirable_weight": 0.8, "undesirable_weight": 1.5}

CASES = [
    dpo("sigmoid", {"name": "dpo"}),
    dpo("hinge", {"name": "hinge"}),
    dpo(
        "ipo",
        {"name": "ipo", "length_normalize": True},
        compare=("loss", "grad"),
        differs=REWARDS_UNNORMALISED,
    ),
    dpo(
        "exo_pair",
        {"name": "exo_pair", "label_smoothing": 0.01},
        trl_args={"label_smoothing": 0.01},
    ),
    dpo("nca_pair", {"name": "nca_pair"}),
    dpo("robust", {"name": "robust", "label_smoothing": 0.2}, trl_args={"label_smoothing": 0.2}),
    dpo(
        "bco_pair",
        {"name": "bco_pair", "running_mean": False},
        differs="TRL 1.16 shifts no reward by a running mean (delta = 0): prefopt's "
        "running_mean=false; the paper's running mean (prefopt's default) is not compared",
    ),
    dpo("sppo_hard", {"name": "sppo_hard"}),
    dpo("aot", {"name": "aot", "label_smoothing": 0.1}, trl_args={"label_smoothing": 0.1}),
    dpo(
        "aot_unpaired",
        {"name": "aot_unpaired", "label_smoothing": 0.1},
        trl_args={"label_smoothing": 0.1},
    ),
    dpo("apo_zero", {"name": "apo_zero"}),
    dpo("apo_down", {"name": "apo_down"}),
    dpo("discopop", {"name": "discopop", "tau": 0.2}, trl_args={"discopop_tau": 0.2}),
    dpo(
        "sigmoid_norm",
        {"name": "sigmoid_norm"},
        compare=("loss", "grad"),
        differs=REWARDS_UNNORMALISED,
    ),
    *(
        dpo(
            "sigmoid",
            {"name": "dpo", "f_divergence": divergence, "f_alpha": 0.3},
            id=f"f_divergence={divergence}",
            trl_args={"f_divergence_type": divergence, "f_alpha_divergence_coef": 0.3},
        )
        for divergence in ("forward_kl", "js_divergence", "alpha_divergence")
    ),
    Case(
        id="sft",
        trainer="dpo",
        trl_args={"loss_type": ["sft"]},
        loss={"name": "sft"},
        compare=("loss", "grad"),
        batch="uniform_chosen",
        differs="TRL's sft averages the NLL over every chosen token of the batch, prefopt's over "
        "each example's tokens: equal on chosen responses of one length; TRL logs beta times the "
        "log-ratios as rewards, prefopt's sft the mean token log-probs, so rewards are not compared",
    ),
    Case(
        id="rpo",
        trainer="dpo",
        trl_args={"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5], "beta": 0.5},
        loss={
            "name": "combined",
            "components": [
                {"name": "dpo", "beta": 0.5},
                {"name": "sft", "weight": 0.5},
            ],
        },
        batch="uniform_chosen",
        differs="TRL's sft term averages the NLL over every chosen token of the batch, prefopt's "
        "over each example's tokens: equal on chosen responses of one length",
    ),
    dpo("sigmoid", {"name": "wpo"}, id="use_weighting", trl_args={"use_weighting": True}),
    dpo("sigmoid", {"name": "ld_dpo", "ld_alpha": 0.5}, id="ld_alpha", trl_args={"ld_alpha": 0.5}),
    Case(
        id="simpo",
        trainer="cpo",
        trl_args={"loss_type": "simpo", "cpo_alpha": 0.0, "beta": 2.0, "simpo_gamma": 0.8},
        loss={"name": "simpo", "beta": 2.0, "gamma": 0.8},
    ),
    Case(
        id="cpo_simpo",
        trainer="cpo",
        trl_args={"loss_type": "simpo", "cpo_alpha": 0.7, "beta": 2.0, "simpo_gamma": 0.8},
        loss={"name": "simpo", "beta": 2.0, "gamma": 0.8, "nll_weight": 0.7},
        metrics={"nll_loss": "nll"},
        batch="uniform_chosen",
        differs=NLL_AVERAGED_OVER_TOKENS,
    ),
    Case(
        id="cpo",
        trainer="cpo",
        trl_args={"loss_type": "sigmoid", "cpo_alpha": 0.7, "beta": 0.5, "label_smoothing": 0.1},
        loss={"name": "cpo", "beta": 0.5, "cpo_alpha": 0.7, "label_smoothing": 0.1},
        metrics={"nll_loss": "nll"},
        batch="uniform_chosen",
        differs=NLL_AVERAGED_OVER_TOKENS,
    ),
    Case(
        id="alphapo",
        trainer="cpo",
        trl_args={"loss_type": "alphapo", "alpha": 0.2, "beta": 2.0, "simpo_gamma": 0.8},
        loss={"name": "simpo", "beta": 2.0, "gamma": 0.8, "alpha": 0.2},
    ),
    Case(
        id="kto",
        trainer="kto",
        trl_args={"loss_type": "kto", **UNPAIRED_HYPERPARAMETERS},
        loss={"name": "kto", **UNPAIRED_HYPERPARAMETERS},
        metrics={"kl": "kl"},
        differs="TRL averages the KL baseline z0 across devices, prefopt per process: equal on "
        "one process; both sides take TRL's mismatched completions (each row gets the previous "
        "row's), where prefopt's data pipeline pairs them by its own seeded ring",
    ),
    Case(
        id="apo_zero_unpaired",
        trainer="kto",
        trl_args={"loss_type": "apo_zero_unpaired", **UNPAIRED_HYPERPARAMETERS},
        loss={"name": "apo_zero_unpaired", **UNPAIRED_HYPERPARAMETERS},
    ),
    Case(
        id="orpo",
        trainer="orpo",
        trl_args={"beta": 0.3},
        loss={"name": "orpo", "beta": 0.3},
        metrics={"log_odds_chosen": "log_odds_ratio", "nll_loss": "nll"},
        batch="uniform_chosen",
        differs="TRL's NLL averages over every token of the batch's chosen sequences, prompt "
        "included, prefopt's over each example's response tokens: equal on one-token prompts "
        "(never predicted) and chosen responses of one length",
    ),
]
