"""Online algorithms through the shared trainer: they learn, and a cut run resumes exactly."""

import json

import pytest
import torch

from prefopt.online.pairs import OnlinePairs
from prefopt.online.ppo import PPORollouts
from prefopt.online.rollouts import RLOORollouts
from prefopt.trainer.build import RunSettings, build_run
from prefopt.trainer.loop import Hooks, Trainer
from prefopt.trainer.setup import check_config

COMMON = [
    "task=reviews_tiny",
    "trainer.batch_size=16",
    "trainer.epochs=20",
    "trainer.log_every=1",
    "eval.num_prompts=64",
    "eval.test_at=never",
    "device=cpu",
    "num_threads=1",
]
RLOO_GT = [*COMMON, "online=rloo", "trainer.lr=1e-3"]  # RLOO against the gold reward
ONLINE_DPO = [*COMMON, "online=pairs", "loss=dpo", "trainer.lr=1e-3"]
# PPO against the gold reward (PPO-GT): rollouts of 32 prompts, 2 epochs of minibatches of 16
PPO_GT = [
    *COMMON,
    "online=ppo",
    "online.rollout_prompts=32",
    "online.ppo_epochs=2",
    "trainer.lr=1e-3",
]


def _trainer(cfg, run_dir, hooks=None):
    run = build_run(cfg, run_dir, check_config(cfg))
    return Trainer(run, RunSettings.from_config(cfg), hooks)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _stop_at(step):
    def hook(trainer, row):
        if row["step"] == step:
            raise KeyboardInterrupt

    return Hooks(on_step_end=[hook])


@pytest.mark.slow
def test_rloo_against_the_gold_reward_raises_the_validation_gold_reward(compose_config, tmp_path):
    # Measured at these settings: the validation gold reward of the policy's samples goes from
    # -2.16 at step 0 to -0.81 at step 20 and -0.61 at step 30 (grammatical 0.19 -> 0.56), KL 1.5.
    cfg = compose_config([*RLOO_GT, "trainer.max_steps=30", "eval.eval_every=10"])
    trainer = _trainer(cfg, tmp_path)
    assert isinstance(trainer.batches, RLOORollouts)
    trainer.fit()
    rows = _rows(tmp_path)
    validation = {r["step"]: r for r in rows if r["split"] == "validation"}
    assert "loss" not in validation[0]  # RLOO has no preference loss to report on held-out pairs
    gain = max(validation[s]["judge_reward"] for s in (10, 20, 30)) - validation[0]["judge_reward"]
    assert gain > 1.0
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 30 and train[0]["rollout_kl"] == pytest.approx(0.0, abs=1e-5)
    assert train[-1]["rollout_kl"] > 0.1  # the policy moved away from pi_ref
    # costs so far: 16 prompts x 4 samples per step, each scored once
    assert [r["reward_queries"] for r in train] == [64 * (i + 1) for i in range(30)]
    assert train[-1]["tokens_generated"] == pytest.approx(
        64 * sum(r["rollout_length"] for r in train)
    )


@pytest.mark.slow
def test_ppo_against_the_gold_reward_raises_the_validation_gold_reward(compose_config, tmp_path):
    # Measured at these settings: the validation gold reward goes from -2.16 at step 0 to -0.82 at
    # step 20 and -0.77 at step 40 (ten rollouts), win rate 0.47 -> 0.68, KL 1.7 nats.
    cfg = compose_config([*PPO_GT, "trainer.max_steps=40", "eval.eval_every=20"])
    trainer = _trainer(cfg, tmp_path)
    assert isinstance(trainer.batches, PPORollouts)
    trainer.fit()
    rows = _rows(tmp_path)
    validation = {r["step"]: r for r in rows if r["split"] == "validation"}
    gain = max(validation[s]["judge_reward"] for s in (20, 40)) - validation[0]["judge_reward"]
    assert gain > 1.0
    train = [r for r in rows if r["split"] == "train"]
    assert train[0]["approx_kl"] == pytest.approx(0.0, abs=1e-6)  # a fresh rollout: rho = 1
    assert max(r["clip_fraction"] for r in train) > 0  # later epochs of a rollout are clipped
    assert all(r["kl_coef"] == pytest.approx(0.05) for r in train)  # online.kl_target null


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "source"),
    [(RLOO_GT, RLOORollouts), (ONLINE_DPO, OnlinePairs), (PPO_GT, PPORollouts)],
)
def test_an_online_run_cut_and_resumed_logs_what_a_straight_run_logs(
    compose_config, tmp_path, overrides, source
):
    # checkpoints at steps 3 and 6: PPO's 4-step rollouts resume from the middle of one
    steps = ["trainer.max_steps=8", "eval.eval_every=3", "eval.generate=false"]
    cfg = compose_config([*overrides, *steps])
    straight = _trainer(cfg, tmp_path / "straight")
    assert isinstance(straight.batches, source)
    straight.fit()
    cut = _trainer(cfg, tmp_path / "cut", _stop_at(5))
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    _trainer(cfg, tmp_path / "cut").fit()  # resumes from step 3's checkpoint
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "straight")
    losses = [r["loss"] for r in _rows(tmp_path / "straight") if r["split"] == "train"]
    assert len(set(losses)) == len(losses)  # every step trained on batches of its own


@pytest.mark.slow
def test_ppo_against_a_reward_model_starts_its_critic_from_it_and_reports_its_accuracy(
    compose_config, tmp_path
):
    cfg = compose_config([*PPO_GT, "judge@online.reward=proxy", "eval.generate=false"])
    trainer = _trainer(cfg, tmp_path)
    reward_model = trainer.batches.judge.reward_model.model  # trained on the run's pairs
    critic = trainer.run.checkpointed["value_model"].model
    assert torch.equal(critic.score.weight, reward_model.score.weight)
    assert torch.equal(critic.base_model.wte.weight, reward_model.base_model.wte.weight)
    report = json.loads((tmp_path / "reward_model.json").read_text())
    assert report["heldout_pairs"] == 16  # reviews_tiny's validation pairs
    assert 0.0 <= report["heldout_accuracy"] <= 1.0
    assert 0.5 <= report["bayes_accuracy"] <= 1.0  # the ceiling the task's labels allow
