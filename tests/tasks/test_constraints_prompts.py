"""The constraints task's requests, their split by combination, and the generator's optimum."""

from collections import Counter

import numpy as np
import pytest

from prefopt.tasks import build_task
from prefopt.tasks.constraints.generator import sample_response
from prefopt.tasks.constraints.prompts import (
    COMBINATIONS_PER_SHAPE,
    TARGET_LENGTHS,
    all_requests,
    clause_counts,
    parse_prompt,
)
from prefopt.tasks.constraints.reward import ConstraintReward

REQUESTS = all_requests()
PROMPTS = [q.prompt() for q in REQUESTS]


def test_every_prompt_states_two_to_four_constraints_and_parses_back(compose_config):
    assert len(set(PROMPTS)) == len(PROMPTS)
    assert all(parse_prompt(p) == q for p, q in zip(PROMPTS, REQUESTS, strict=True))
    assert Counter(q.n_content + 1 for q in REQUESTS).keys() == {2, 3, 4}  # the length is one
    longest = max(len(p.split()) for p in PROMPTS)
    assert longest <= compose_config(["task=constraints"]).data.max_prompt_length  # none cut


def test_shapes_are_capped_per_domain():
    shapes = Counter(
        (q.domain, q.tone is not None, len(q.mentions), q.avoid is not None)
        for q in {q.combination: q for q in REQUESTS}.values()
    )
    assert len(shapes) == 3 * 10  # every shape of 1-3 content constraints in each domain
    assert max(shapes.values()) == COMBINATIONS_PER_SHAPE


@pytest.mark.parametrize("length", TARGET_LENGTHS)
def test_clause_counts_reach_the_length_exactly(length):
    assert all(5 * c <= length <= 6 * c for c in clause_counts(length))
    assert len(clause_counts(length)) >= 1


def test_the_generator_following_every_constraint_is_optimal():
    """The reward's maximum is 1; every request has a response that reaches it."""
    rng = np.random.default_rng(0)
    responses = [
        sample_response(rng, q, follow_prob=1.0, max_clauses=6, clause_decay=0.5) for q in REQUESTS
    ]
    np.testing.assert_array_equal(ConstraintReward()(PROMPTS, responses), 1.0)


def test_the_generator_meets_constraints_more_often_as_it_follows_more():
    reward = ConstraintReward()
    met = {}
    for follow_prob in (0.0, 0.5):
        rng = np.random.default_rng(1)
        responses = [
            sample_response(rng, q, follow_prob=follow_prob, max_clauses=6, clause_decay=0.5)
            for q in REQUESTS
        ]
        metrics = reward.metrics(PROMPTS, responses)
        assert metrics["grammatical"].all()
        met[follow_prob] = {
            k: np.nanmean(metrics[k]) for k in ("tone_met", "mentions_met", "avoid_met")
        }
        met[follow_prob]["exact_length"] = np.mean(metrics["length_error"] == 0)
    assert all(met[0.5][k] > met[0.0][k] for k in met[0.0]), met
    with pytest.raises(ValueError, match="follow_prob"):
        sample_response(rng, REQUESTS[0], follow_prob=1.5, max_clauses=6, clause_decay=0.5)


@pytest.mark.parametrize("preset", ["constraints", "constraints_tiny"])
def test_held_out_combinations_never_occur_in_training(preset, preset_params):
    params = preset_params(preset)
    splits = build_task(params).split_prompts()
    assert len(splits["validation"]) == params["n_validation_prompts"]
    assert len(splits["test"]) == params["n_test_prompts"]
    combinations = {s: {parse_prompt(p).combination for p in ps} for s, ps in splits.items()}
    assert not combinations["train"] & combinations["validation"]
    assert not combinations["train"] & combinations["test"]
    assert not combinations["validation"] & combinations["test"]
    every = [p for ps in splits.values() for p in ps]
    assert len(set(every)) == len(every) and set(every) <= set(PROMPTS)
    # every constraint value of the held-out prompts is asked for in training, only not together
    train_aspects = {a for p in splits["train"] for a in parse_prompt(p).mentions}
    held_out = splits["validation"] + splits["test"]
    assert {a for p in held_out for a in parse_prompt(p).mentions} <= train_aspects


def test_too_many_held_out_prompts_raise():
    with pytest.raises(ValueError, match="no train prompts"):
        build_task({"name": "constraints", "n_validation_prompts": 2000, "n_test_prompts": 1100})
