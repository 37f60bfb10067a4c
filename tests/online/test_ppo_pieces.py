"""PPO's loss on a hand-made rollout, and its rollouts: minibatches, resume state, adaptive beta."""

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from prefopt.online.draws import PromptDraws
from prefopt.online.ppo import PPOObjective, PPORollouts, PPOSample
from prefopt.online.rollouts import collate_samples, token_logps
from prefopt.online.settings import PPOSettings
from prefopt.online.value_model import ValueModel
from prefopt.tasks.wordlevel import build_word_tokenizer

WORDS = ["good", "bad", "film", "plot", ".", ":"]


def _config():
    config = GPT2Config(vocab_size=len(WORDS) + 3, n_positions=48, n_embd=16, n_layer=1, n_head=2)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    config.pad_token_id, config.eos_token_id, config.num_labels = 0, 1, 1
    return config


def _settings(**overrides):
    values = dict(
        kind="ppo",
        run_label="ppo",
        reward={"kind": "gold"},
        rollout_prompts=4,
        ppo_epochs=2,
        kl_coef=0.1,
        kl_target=None,
        kl_horizon=1000.0,
        kl_estimator="k1",
        missing_eos_penalty=0.0,
        clip_eps=0.2,
        value_clip=0.2,
        vf_coef=0.5,
        value_lr=1e-3,
        gamma=1.0,
        lam=0.95,
        whiten_advantages=True,
        max_new_tokens=6,
    )
    return PPOSettings.from_config({**values, **overrides})


class LengthJudge:
    """Scores a response by its word count (a stand-in reward)."""

    def score(self, prompts, responses):
        return np.array([len(r.split()) for r in responses], dtype=np.float64)


class Frozen:
    """pi_ref: a frozen copy's token log-probs."""

    def __init__(self, model):
        self.model = model

    def token_logps(self, batch):
        return token_logps(self.model, batch)


@pytest.fixture
def parts():
    torch.manual_seed(0)
    policy, reference = GPT2LMHeadModel(_config()), GPT2LMHeadModel(_config())
    reference.load_state_dict(policy.state_dict())
    critic = ValueModel(GPT2ForSequenceClassification(_config()), lr=1e-3, max_grad_norm=1.0)
    tokenizer = build_word_tokenizer(WORDS)
    return policy, Frozen(reference), critic, tokenizer


def _rollouts(parts, **overrides):
    policy, reference, critic, tokenizer = parts
    prompts = ["good film :", "bad plot :", "film :", "plot :", "good :", "bad :"]
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    settings = _settings(**overrides)
    draws = PromptDraws(prompts, encode, settings.rollout_prompts, seed=0)
    return PPORollouts(draws, tokenizer, LengthJudge(), reference, critic, settings, 2)


def test_each_rollout_serves_its_epochs_of_minibatches_then_a_new_one_is_drawn(parts):
    source = _rollouts(parts)
    assert source.steps_per_rollout == 4 and source.size == 6 * 2
    first = [source.batch(step, parts[0]) for step in range(4)]
    assert all(batch.items is first[0].items for batch in first)  # one rollout for 4 steps
    assert sorted(first[0].indices + first[1].indices) == [0, 1, 2, 3]  # an epoch covers it once
    assert sorted(first[2].indices + first[3].indices) == [0, 1, 2, 3]
    assert source.batch(4, parts[0]).items is not first[0].items  # step 4: a fresh rollout


def test_the_state_dict_restores_a_rollout_in_the_middle(parts):
    source = _rollouts(parts)
    source.batch(0, parts[0])
    state = source.state_dict()
    expected = source.batch(1, parts[0])
    restored = _rollouts(parts)
    restored.load_state_dict(state)
    batch = restored.batch(1, parts[0])
    assert batch.indices == expected.indices
    got, want = (collate_samples(b.items, b.indices, 0) for b in (batch, expected))
    for name in ("input_ids", "old_logps", "advantages", "returns", "old_values"):
        assert torch.equal(got[name], want[name]), name


def test_the_adaptive_controller_raises_beta_when_the_kl_is_above_target(parts):
    source = _rollouts(parts, kl_target=1e-6, kl_coef=0.1)
    with torch.no_grad():  # move the policy away from pi_ref so that the KL is positive
        for weight in parts[0].parameters():
            weight.add_(0.3 * torch.randn_like(weight))
    source.batch(0, parts[0])
    assert source.kl.kl_coef == pytest.approx(0.1 * (1 + 0.2 * 4 / 1000))  # error clipped at 0.2


def test_fresh_rollout_losses_are_the_token_means_of_minus_a_and_half_the_squared_error(parts):
    policy, _, critic, tokenizer = parts
    prompt, response = [3, 4], [5, 6, 1]
    sample = PPOSample(
        prompt,
        response,
        torch.zeros(3),
        torch.zeros(3),
        torch.zeros(3),
        torch.zeros(3),
        0.0,
        0.0,
        True,
        0.1,
    )
    batch = collate_samples([sample], [0], 0)
    old = token_logps(policy, batch)[0]  # (3,)
    values = critic.rollout_values(batch)[0]  # (3,)
    advantages, returns = torch.tensor([1.0, -2.0, 0.5]), values + torch.tensor([0.1, -0.1, 0.05])
    sample = PPOSample(prompt, response, old, values, advantages, returns, 0.0, 0.0, True, 0.1)
    losses, sums = PPOObjective(critic, _settings()).micro_batch(
        policy, collate_samples([sample], [0], 0)
    )
    policy_loss = -(1.0 - 2.0 + 0.5) / 3  # rho = 1: the token mean of -A
    value_loss = 0.5 * (0.1**2 + 0.1**2 + 0.05**2) / 3  # unclipped: the new values are V_old
    assert sums["policy_loss"].item() == pytest.approx(policy_loss, abs=1e-6)
    assert sums["value_loss"].item() == pytest.approx(value_loss, abs=1e-6)
    assert losses.item() == pytest.approx(policy_loss + 0.5 * value_loss, abs=1e-6)
    assert sums["approx_kl"].item() == pytest.approx(0.0, abs=1e-7)
    losses.sum().backward()
    assert any(p.grad is not None and p.grad.any() for p in critic.model.parameters())
