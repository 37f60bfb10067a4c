"""TRL parity: prefopt.rl's RLOO and PPO pieces against TRL 1.16's own trainers on a tiny model.

TRL 1.16 ships no PPO trainer and no standalone RL helpers (whitening, GAE, KL controllers): its
RL math lives inside RLOOTrainer and GRPOTrainer, so each case builds TRL's trainer on a tiny
GPT-2 and runs TRL's own methods on a pinned rollout (its ``_generate`` returns fixed token ids:
sampling is not under test; prompts have one length, so TRL's left padding adds nothing):

- RLOO: ``_generate_and_score_completions`` (the k1 sequence KL penalty in the reward, the
  leave-one-out advantages), then, after the policy has moved (a later update of the same rollout,
  or none: a fresh rollout), ``_compute_loss`` (the clipped sequence ratio) and its gradient;
  against ``sequence_rewards``, ``rloo_advantages`` and ``rloo_policy_loss``.
- PPO's clipped surrogate: GRPOTrainer's ``_compute_loss`` with ``loss_type="bnpo"`` (the per-token
  clipped surrogate, averaged over the batch's tokens) and ``beta=0``, against ``ppo_policy_loss``
  with each sequence's advantage on all its tokens; with ``beta > 0`` (no bias correction) its
  logged per-token KL, Schulman's k3, against ``token_kl(..., "k3")``.

prefopt's per-token log-probs come from ``response_token_logps`` on prefopt's own copy of each
model (TRL patches its models' forward with a fused LM head), aligned on each response's first
token as TRL's completion log-probs are.
"""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import policy_and_reference

from prefopt.models.logprobs import build_batch, response_token_logps
from prefopt.rl.advantages import rloo_advantages
from prefopt.rl.masks import masked_mean
from prefopt.rl.objectives import ppo_policy_loss, rloo_policy_loss
from prefopt.rl.rewards import sequence_rewards, token_kl
from prefopt.tasks.wordlevel import build_word_tokenizer

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

# Two prompts of three words, k = 3 completions each; some end with EOS, some were cut off.
PROMPTS = ["the film was", "the plot was"]
COMPLETIONS = [["good", "very bad film", "dull and"], ["fine acting", "great", "awful plot very"]]
ENDED_WITH_EOS = [[True, True, False], [True, False, False]]
SCORES = [[1.0, -0.5, 0.2], [0.3, 2.0, -1.0]]
K = 3
BETA = 0.1  # RLOO's KL coefficient
KL_BETA = 0.04  # GRPO's, for its logged KL
EPS = 0.2
# The policy's move before the loss: STEP times the gradient of sum_i sign(A_i) log pi(y_i), which
# pushes ratios past both sides of the clip (0 is a fresh rollout: every ratio 1).
STEP = 0.002
REFERENCE_NOISE = 0.05  # std of the noise added to every policy weight to make the reference
# Tolerances. Both sides compute in fp32 from the same weights and token ids; they differ in how a
# log softmax is ordered (TRL's chunked fused LM head, prefopt's gather minus logsumexp): a few fp32
# ulps on log-probs of order 1 to 10 (the sides agree to about 5e-7), far below what a formula
# error (a beta, a baseline, a clip side) moves: 1e-3 or more.
RTOL, ATOL = 1e-5, 1e-5
GRAD_ATOL = 1e-5  # times the largest |gradient| entry


@pytest.fixture(scope="module")
def tokenizer():
    words = {w for text in PROMPTS + sum(COMPLETIONS, []) for w in text.split()}
    return build_word_tokenizer(sorted(words))


@pytest.fixture(scope="module")
def models(tokenizer, tmp_path_factory):
    """(policy, reference, directory the policy is saved in): a 2-layer GPT-2 without dropout and
    a perturbed copy; TRL loads its policy and its reference from the directory."""
    policy, reference = policy_and_reference(tokenizer, REFERENCE_NOISE)
    directory = tmp_path_factory.mktemp("policy")
    policy.save_pretrained(directory)
    return policy, reference, directory


@pytest.fixture(scope="module")
def rollout(tokenizer):
    """Token ids of the pinned rollout, prompt-major (k consecutive completions per prompt)."""

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompts = [ids(p) for p in PROMPTS for _ in range(K)]
    assert len({len(p) for p in prompts}) == 1  # one length: no left padding on TRL's side
    completions = [
        ids(text) + ([tokenizer.eos_token_id] if ended else [])
        for texts, ends in zip(COMPLETIONS, ENDED_WITH_EOS, strict=True)
        for text, ended in zip(texts, ends, strict=True)
    ]
    batch = build_batch(prompts, completions, tokenizer.pad_token_id)
    return {"prompt_ids": prompts, "completion_ids": completions, "batch": batch}


def score_by_text(prompts, completions, **kwargs):
    """TRL's reward function: the pinned score of each decoded completion."""
    scores = {
        text: score
        for texts, row in zip(COMPLETIONS, SCORES, strict=True)
        for text, score in zip(texts, row, strict=True)
    }
    return [scores[c.strip()] for c in completions]


def trl_trainer(kind, models, tokenizer, rollout, tmp_path, **config):
    """TRL's trainer (policy and reference loaded from the saved policy; the reference then
    given the perturbed weights), generating the pinned rollout, in train mode."""
    from transformers import GPT2LMHeadModel

    _, reference, directory = models
    common = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": len(rollout["prompt_ids"]),
        "num_generations": K,
        "epsilon": EPS,
        "temperature": 1.0,
        "max_completion_length": 8,
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "report_to": [],
        "disable_tqdm": True,
        "save_strategy": "no",
        **config,
    }
    config_class, trainer_class = {
        "rloo": (trl.RLOOConfig, trl.RLOOTrainer),
        "grpo": (trl.GRPOConfig, trl.GRPOTrainer),
    }[kind]
    trainer = trainer_class(
        model=GPT2LMHeadModel.from_pretrained(directory),
        reward_funcs=score_by_text,
        args=config_class(**common),
        train_dataset=datasets.Dataset.from_list([{"prompt": p} for p in PROMPTS]),
        processing_class=tokenizer,
    )
    if trainer.ref_model is not None:
        trainer.ref_model.load_state_dict(reference.state_dict())
    texts = tokenizer.batch_decode(rollout["completion_ids"], skip_special_tokens=True)
    trainer._generate = lambda prompts: (rollout["prompt_ids"], rollout["completion_ids"], texts)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which does not run
    return trainer


def token_logps(model, rollout):
    """prefopt's per-token log-probs (N, L) and response mask (N, L) of the rollout."""
    batch = rollout["batch"]
    logps, lengths, _ = response_token_logps(
        model, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
    )
    return logps, torch.arange(logps.shape[1]) < lengths.unsqueeze(1)


def move(policy, trainer_model, rollout, advantages, step):
    """Move both copies of the policy by ``step`` times the gradient of sum_i sign(A_i) log pi(y_i)."""
    scratch = copy.deepcopy(policy)
    logps, _ = token_logps(scratch, rollout)
    (advantages.sign() * logps.sum(-1)).sum().backward()
    with torch.no_grad():
        deltas = {name: step * p.grad for name, p in scratch.named_parameters()}
        for model in (policy, trainer_model):
            for name, parameter in model.named_parameters():
                parameter.add_(deltas[name])


def assert_same_gradients(ours, theirs):
    their_grads = dict(theirs.named_parameters())
    largest = max(p.grad.abs().max().item() for p in their_grads.values())
    assert largest > 0
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(
            parameter.grad, their_grads[name].grad, rtol=RTOL, atol=GRAD_ATOL * largest
        )


def close(ours, theirs):
    torch.testing.assert_close(
        torch.as_tensor(ours).float(), torch.as_tensor(theirs).float(), rtol=RTOL, atol=ATOL
    )


def test_response_token_logps_are_trls_completion_logps(models, tokenizer, rollout, tmp_path):
    trainer = trl_trainer("rloo", models, tokenizer, rollout, tmp_path, beta=BETA)
    out = trainer._generate_and_score_completions(
        [{"prompt": p} for p in PROMPTS for _ in range(K)]
    )
    input_ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    attention_mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    with torch.no_grad():
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention_mask, out["completion_ids"].shape[1]
        )
        ours, mask = token_logps(copy.deepcopy(models[0]), rollout)
    assert torch.equal(mask.long(), out["completion_mask"])
    close(ours, theirs * mask)


@pytest.mark.parametrize(
    ("step", "eps_high"),
    [(0.0, None), (STEP, None), (STEP, 0.28)],
    ids=["fresh", "moved", "moved-asymmetric"],
)
def test_rloo_matches_trl(models, tokenizer, rollout, tmp_path, step, eps_high):
    trainer = trl_trainer(
        "rloo", models, tokenizer, rollout, tmp_path, beta=BETA, epsilon_high=eps_high
    )
    out = trainer._generate_and_score_completions(
        [{"prompt": p} for p in PROMPTS for _ in range(K)]
    )
    policy, reference = copy.deepcopy(models[0]), models[1]
    with torch.no_grad():
        old_logps, mask = token_logps(policy, rollout)
        ref_logps, _ = token_logps(reference, rollout)
    rewards = sequence_rewards(
        torch.tensor(SCORES).flatten(),
        old_logps,
        ref_logps,
        mask,
        kl_coef=BETA,
        ended_with_eos=torch.tensor(ENDED_WITH_EOS).flatten(),
    )  # (P k,)
    advantages = rloo_advantages(rewards.view(len(PROMPTS), K)).flatten()  # (P k,)
    close(advantages, out["advantages"])
    close(
        masked_mean(token_kl(old_logps, ref_logps, mask, "k1"), mask),
        trainer._metrics["train"]["kl"][-1],
    )

    move(policy, trainer.model, rollout, advantages, step)
    theirs = trainer._compute_loss(trainer.model, out)
    theirs.backward()
    logps, _ = token_logps(policy, rollout)
    ours = rloo_policy_loss(logps, old_logps, advantages, mask, EPS, eps_high)
    ours.loss.backward()
    close(ours.loss, theirs.detach())
    assert_same_gradients(policy, trainer.model)
    their_clip = trainer._metrics["train"]["clip_ratio/region_mean"][-1]
    close(ours.clip_fraction, their_clip)
    if step == 0.0:
        close(ours.loss, -advantages.mean())
    else:
        assert 0.0 < their_clip < 1.0  # the case reaches the clip and also leaves terms unclipped


def grpo_inputs(rollout, mask, advantages, old_logps, ref_logps, pad_id):
    """The rollout as GRPOTrainer's ``_compute_loss`` reads it (prompts of one length: no padding)."""
    prompt_ids = torch.tensor(rollout["prompt_ids"])  # (B, P)
    completion_ids = torch.full(mask.shape, pad_id, dtype=torch.long)  # (B, L)
    for i, ids in enumerate(rollout["completion_ids"]):
        completion_ids[i, : len(ids)] = torch.tensor(ids)
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": mask.long(),
        "advantages": advantages,
        "old_per_token_logps": old_logps,
        "ref_per_token_logps": ref_logps,
    }


ADVANTAGES = [1.0, -0.5, 0.3, -1.2, 0.8, 0.1]  # one per sequence


def test_ppo_clipped_surrogate_matches_trls_per_token_loss(models, tokenizer, rollout, tmp_path):
    trainer = trl_trainer("grpo", models, tokenizer, rollout, tmp_path, beta=0.0, loss_type="bnpo")
    policy = copy.deepcopy(models[0])
    with torch.no_grad():
        old_logps, mask = token_logps(policy, rollout)
    advantages = torch.tensor(ADVANTAGES)
    move(policy, trainer.model, rollout, advantages, 5 * STEP)
    inputs = grpo_inputs(rollout, mask, advantages, old_logps, None, tokenizer.pad_token_id)
    theirs = trainer._compute_loss(trainer.model, inputs)
    theirs.backward()
    logps, _ = token_logps(policy, rollout)
    per_token = advantages.unsqueeze(1).expand_as(logps)  # (B, L)
    ours = ppo_policy_loss(logps, old_logps, per_token, mask, EPS)
    ours.loss.backward()
    close(ours.loss, theirs.detach())
    assert_same_gradients(policy, trainer.model)
    their_clip = trainer._metrics["train"]["clip_ratio/region_mean"][-1]
    close(ours.clip_fraction, their_clip)
    assert 0.0 < their_clip < 1.0


def test_k3_matches_trls_logged_kl(models, tokenizer, rollout, tmp_path):
    trainer = trl_trainer(
        "grpo",
        models,
        tokenizer,
        rollout,
        tmp_path,
        beta=KL_BETA,
        loss_type="bnpo",
        use_bias_correction_kl=False,
    )
    policy, reference = copy.deepcopy(models[0]), models[1]
    with torch.no_grad():
        old_logps, mask = token_logps(policy, rollout)
        ref_logps, _ = token_logps(reference, rollout)
    advantages = torch.tensor(ADVANTAGES)
    inputs = grpo_inputs(rollout, mask, advantages, old_logps, ref_logps, tokenizer.pad_token_id)
    theirs = trainer._compute_loss(trainer.model, inputs)
    kl = masked_mean(token_kl(old_logps, ref_logps, mask, "k3"), mask)
    close(kl, trainer._metrics["train"]["kl"][-1])
    per_token = advantages.unsqueeze(1).expand_as(old_logps)  # (B, L)
    surrogate = ppo_policy_loss(old_logps, old_logps, per_token, mask, EPS).loss
    close(surrogate + KL_BETA * kl, theirs.detach())
