"""What an evaluator samples: the prompts of each split and the samples per prompt, from the eval
config (k of the policy, m of pi_ref; the test split may have counts of its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from prefopt.eval.settings import eval_value

TEST_SPLIT = "test"  # the split that eval_cfg's test_*_samples_per_prompt apply to


@dataclass(frozen=True)
class SampleCounts:
    """Samples per prompt on one split: ``policy`` = k of the evaluated policy, ``reference`` = m
    of pi_ref."""

    policy: int
    reference: int


def samples_per_prompt(eval_cfg: Mapping, splits) -> dict[str, SampleCounts]:
    """Each split's counts: ``policy_samples_per_prompt`` and ``reference_samples_per_prompt``,
    on the test split ``test_policy_samples_per_prompt`` and ``test_reference_samples_per_prompt``
    where given (null or left out: the other splits' counts). A mapping written by hand that
    leaves out one of the first two gets conf/eval/default.yaml's value (:func:`eval_value`)."""

    def count(name: str) -> int:
        return _positive_int(eval_value(eval_cfg, name), name)

    counts = SampleCounts(count("policy_samples_per_prompt"), count("reference_samples_per_prompt"))
    test_counts = SampleCounts(
        policy=_positive_int_or(eval_cfg, "test_policy_samples_per_prompt", counts.policy),
        reference=_positive_int_or(eval_cfg, "test_reference_samples_per_prompt", counts.reference),
    )
    return {split: test_counts if split == TEST_SPLIT else counts for split in splits}


def _positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, else a ValueError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_int_or(eval_cfg: Mapping, name: str, fallback: int) -> int:
    """``eval_cfg[name]`` as a positive int, or ``fallback`` when absent or null."""
    value = eval_cfg.get(name)
    return fallback if value is None else _positive_int(value, name)


def select_prompts(prompts, num_prompts, encode):
    """The first ``num_prompts`` prompts of each split and their token ids; errors on empty ones."""
    if not prompts:
        raise ValueError("the evaluator needs at least one split of prompts; got none")
    if num_prompts is not None and int(num_prompts) < 1:
        raise ValueError(f"num_prompts must be a positive integer or null, got {num_prompts}")
    texts, ids = {}, {}
    for split, split_prompts in prompts.items():
        chosen = list(split_prompts)[: None if num_prompts is None else int(num_prompts)]
        if not chosen:
            raise ValueError(f"split {split!r} has no prompts to evaluate on")
        encoded = [list(encode(p)) for p in chosen]
        empty = [i for i, e in enumerate(encoded) if not e]
        if empty:
            raise ValueError(f"split {split!r}: prompt {empty[0]} encodes to no tokens")
        texts[split], ids[split] = chosen, encoded
    return texts, ids
