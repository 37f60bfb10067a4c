"""The `eval` config group, checked (conf/eval/default.yaml holds each key's default and meaning).

``EvalSettings.from_config(cfg.eval)`` refuses a bad key before any data or model is touched, naming
it: ``eval.temperature=0: expected a positive number``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from omegaconf import OmegaConf

from prefopt.config_keys import (
    FLAG,
    NAME,
    CheckedGroup,
    Rule,
    choice,
    integer,
    key,
    number,
    optional,
    sequence_of,
)

TEST_AT = ("best_and_final", "final", "every", "never")  # when the trainer scores the test split

# An int counts optimiser steps, a float epochs (0.25: four times an epoch); 0 is off, as for
# trainer.max_grad_norm and eval.top_k: no evaluation between the first and the last step.
EVAL_EVERY = Rule(
    "a number of optimiser steps (an integer >= 0) or of epochs (a float >= 0); 0 = off",
    lambda v: integer(0).accepts(v) or (isinstance(v, float) and v >= 0.0),
)


@dataclass(frozen=True)
class EvalSettings(CheckedGroup):
    """Every key of the `eval` group, checked; no defaults of its own (the YAML has them)."""

    GROUP = "eval"

    generate: bool = key(FLAG)
    eval_every: int | float = key(EVAL_EVERY)
    at_start: bool = key(FLAG)
    pair_batch_size: int = key(integer(1))
    max_new_tokens: int = key(integer(1))
    temperature: float = key(
        replace(number(0.0, above=True), expected="a positive number (top_k=1 samples greedily)")
    )
    top_k: int = key(integer(0))
    top_p: float = key(number(0.0, 1.0, above=True))
    batch_size: int = key(integer(1))
    num_prompts: int | None = key(optional(integer(1), "all of them"))
    reference_seed: int = key(integer(0))
    policy_samples_per_prompt: int = key(integer(1))
    reference_samples_per_prompt: int = key(integer(1))
    test_policy_samples_per_prompt: int | None = key(
        optional(integer(1), "policy_samples_per_prompt")
    )
    test_reference_samples_per_prompt: int | None = key(
        optional(integer(1), "reference_samples_per_prompt")
    )
    baseline_name_or_path: str | None = key(optional(NAME, "pi_ref"))
    best_of_n_ns: tuple[int, ...] = key(
        sequence_of(integer(1), "a list of positive integers ([] for no best-of-n baseline)")
    )
    best_of_n_samples: int | None = key(optional(integer(1), "max(best_of_n_ns)"))
    test_at: str = key(choice(TEST_AT))
    proxy: bool = key(FLAG)

    def check(self) -> None:
        """best_of_n_samples, when set, covers the largest n (it is the number of pi_ref samples
        best-of-n draws per prompt)."""
        largest = max(self.best_of_n_ns, default=0)
        if self.best_of_n_samples is not None and self.best_of_n_samples < largest:
            raise self.error(
                f"best_of_n_samples={self.best_of_n_samples} is fewer than the largest "
                f"eval.best_of_n_ns ({largest}); null draws {largest}"
            )


@functools.cache
def eval_defaults() -> EvalSettings:
    """conf/eval/default.yaml's settings, the group's one set of defaults: what a mapping written
    by hand (a test's) gets for a key it leaves out; a composed config carries every key."""
    from prefopt.train import CONFIG_DIR

    return EvalSettings.from_config(
        OmegaConf.load(os.path.join(CONFIG_DIR, "eval", "default.yaml"))
    )


def eval_value(eval_cfg: Mapping, name: str):
    """``eval_cfg[name]``, or conf/eval/default.yaml's value where a mapping written by hand leaves
    the key out (:func:`eval_defaults`)."""
    return eval_cfg[name] if name in eval_cfg else getattr(eval_defaults(), name)


def eval_interval(eval_every: int | float, steps_per_epoch: int, total_steps: int) -> int:
    """Optimiser steps between evaluations for ``eval.eval_every``; 0 (off) gives ``total_steps``,
    so that only the last step evaluates."""
    if not EVAL_EVERY.accepts(eval_every):
        raise EvalSettings.error(f"eval_every={eval_every!r}: expected {EVAL_EVERY.expected}")
    if eval_every == 0:
        return total_steps
    if isinstance(eval_every, float):
        return max(1, round(eval_every * steps_per_epoch))
    return eval_every
