"""pi_ref judged against itself with the default test-split sample counts: no offset from the draws.

Over 20 policy seeds (one shared pi_ref draw, as in a sweep) the win rate's mean stays within 0.3
points of 50% and each seed's 95% interval covers 50% in at least 90% of them. The judge gives
nearly untied rewards, the hardest case for the draws (per-comparison variance near 1/12).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import WORDS, load_model
from omegaconf import OmegaConf

from prefopt.eval import Evaluator, Judge

DEFAULTS = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "eval" / "default.yaml")
SEEDS = 20
N_PROMPTS = 240  # enough that the shared pi_ref draw moves the mean by < 0.1 points (one sd)
MAX_OFFSET = 0.003  # |mean win rate - 0.5| over the seeds
MIN_COVERAGE = 0.9  # share of the seeds whose 95% interval covers 0.5


class WordValueJudge(Judge):
    """Pointwise judge: the reward is the sum of a fixed random value per word (ties are rare)."""

    name = "word_value"

    def __init__(self):
        values = np.random.default_rng(0).standard_normal(len(WORDS))
        self.values = dict(zip(WORDS, values, strict=True))

    def score(self, prompts, responses):
        return np.array([sum(self.values.get(w, 0.0) for w in r.split()) for r in responses])


def test_pi_ref_against_itself_on_test_has_no_offset(model_dir, tokenizer, tmp_path):
    rng = np.random.default_rng(0)
    prompts = [" ".join(rng.choice(WORDS, size=4)) for _ in range(N_PROMPTS)]
    eval_cfg = {
        **OmegaConf.to_container(DEFAULTS),
        "max_new_tokens": 6,  # short responses keep the test fast; their rewards rarely tie
        "batch_size": 512,
    }
    evaluator = Evaluator(
        eval_cfg, WordValueJudge(), tokenizer, load_model(model_dir), {"test": prompts},
        tmp_path, "pi_ref",
    )  # fmt: skip
    counts = evaluator.samples_per_prompt["test"]
    assert (counts.policy, counts.reference) == (
        DEFAULTS.test_policy_samples_per_prompt,
        DEFAULTS.test_reference_samples_per_prompt,
    )
    rewards = evaluator.reference("test").rewards  # (m, N)
    assert np.mean(rewards[0] == rewards[1]) < 0.2  # mostly untied comparisons
    policy = load_model(model_dir)
    rows = [evaluator.evaluate(policy, "test", step=0, seed=seed) for seed in range(SEEDS)]
    wins = np.array([r["win_rate"] for r in rows])  # (SEEDS,)
    assert len(set(wins)) == SEEDS  # each seed draws its own policy samples
    assert abs(wins.mean() - 0.5) <= MAX_OFFSET
    covered = [r["win_rate_ci_low"] <= 0.5 <= r["win_rate_ci_high"] for r in rows]
    assert np.mean(covered) >= MIN_COVERAGE
    assert all(r["kl"] == pytest.approx(0.0, abs=1e-6) for r in rows)  # the policy is pi_ref
