"""RLOO's loss on collated rollouts: -A per sequence on a fresh rollout, REINFORCE's gradient."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from prefopt.models.logprobs import sequence_logps
from prefopt.online.rollouts import RLOOObjective, Rollout, collate_samples, token_logps

PAD = 0


@pytest.fixture
def policy():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=12, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    return GPT2LMHeadModel(config)


def _rollouts(policy, advantages):
    prompts, responses = [[3, 4], [3, 4, 5], [6]], [[7, 8, 1], [9], [10, 11]]
    batch = collate_samples(
        [
            Rollout(p, r, torch.zeros(len(r)), 0.0, 0.0, 0.0, True)
            for p, r in zip(prompts, responses, strict=True)
        ],
        range(3),
        PAD,
    )
    old = token_logps(policy, batch)  # (3, 3): the sampling policy's
    return [
        Rollout(p, r, old[k, : len(r)], a, 0.5 * k, 0.1 * k, k != 1)
        for k, (p, r, a) in enumerate(zip(prompts, responses, advantages, strict=True))
    ]


def test_collation_aligns_old_logps_and_masks_padding(policy):
    items = _rollouts(policy, [1.0, -0.5, -0.5])
    batch = collate_samples(items, [0, 1, 2], PAD)
    assert batch["token_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert batch["old_logps"][1, 1:].tolist() == [0.0, 0.0]
    assert batch["index"] is None and batch["finished"].tolist() == [1.0, 0.0, 1.0]
    assert torch.allclose(batch["old_logps"][0], items[0].old_logps)


def test_fresh_rollout_loss_is_minus_the_advantage_with_reinforce_gradient(policy):
    advantages = [1.0, -0.25, -0.75]
    batch = collate_samples(_rollouts(policy, advantages), [0, 1, 2], PAD)
    losses, sums = RLOOObjective(clip_eps=0.2).micro_batch(policy, batch)
    assert torch.allclose(losses, -torch.tensor(advantages), atol=1e-6)  # rho = 1
    assert sums["sequence_clip_fraction"].item() == 0.0
    assert sums["rollout_score"].item() == pytest.approx(0.0 + 0.5 + 1.0)
    assert sums["rollout_finished"].item() == 2.0
    grads = torch.autograd.grad(losses.sum(), list(policy.parameters()))
    logps, _ = sequence_logps(
        policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
    )  # (3,)
    reinforce = -(torch.tensor(advantages) * logps).sum()
    expected = torch.autograd.grad(reinforce, list(policy.parameters()))
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, want, atol=1e-5)


def test_a_positive_advantage_raises_its_response_and_the_clip_stops_it(policy):
    batch = collate_samples(_rollouts(policy, [1.0, 0.0, 0.0]), [0], PAD)
    objective = RLOOObjective(clip_eps=0.2)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.01)
    before = token_logps(policy, batch).sum()
    losses, _ = objective.micro_batch(policy, batch)
    losses.sum().backward()
    optimizer.step()
    assert token_logps(policy, batch).sum() > before
    batch["old_logps"] = batch["old_logps"] - 1.0  # rho = e^3 > 1.2: clipped, no gradient
    optimizer.zero_grad()
    losses, sums = objective.micro_batch(policy, batch)
    assert sums["sequence_clip_fraction"].item() == 1.0
    losses.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in policy.parameters())
