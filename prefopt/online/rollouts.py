"""RLOO: k samples of the current policy per prompt, a leave-one-out baseline, REINFORCE.

Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs.
Ahmadian, Cremer, Galle, Fadaee, Kreutzer, Pietquin, Ustun, Hooker, arXiv 2402.14740.

Each step (:class:`RLOORollouts`) draws ``trainer.batch_size`` training prompts, samples k responses
to each from the policy being trained (temperature 1), scores them with the reward judge and
computes, with the sampling policy's and pi_ref's token log-probs (no gradient),

    R_i = s_i - missing_eos_penalty * [no EOS] - beta * sum_t kl_t      (prefopt.rl.rewards)
    A_i = R_i - mean_{j != i} R_j   over the prompt's k samples           (prefopt.rl.advantages)

The step's loss (:class:`RLOOObjective`) is the clipped surrogate on each sequence's ratio
rho_i = pi(y_i) / pi_old(y_i) (prefopt.rl.objectives, TRL 1.16's RLOO loss), summed over the
step's P k sequences and divided by P k. With one update per rollout rho = 1, its value is -mean(A)
(about 0: the logged ``loss`` says nothing of progress; ``rollout_score`` does) and its gradient
REINFORCE's, -mean_i A_i grad log pi(y_i). Train rows log the rollout's mean ``rollout_score`` (s,
the reward judge's score), ``rollout_kl`` (sum_t kl_t with the configured estimator),
``rollout_length`` (response tokens), ``rollout_finished`` (share ending with EOS) and
``sequence_clip_fraction`` (share of sequences whose ratio is clipped; PPO's ``clip_fraction``
counts tokens).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from prefopt.models.logprobs import build_batch, response_token_logps
from prefopt.models.sampling import sample_responses
from prefopt.online.draws import DrawnSource, PromptDraws
from prefopt.online.settings import RLOOSettings
from prefopt.rl.advantages import rloo_advantages
from prefopt.rl.objectives import clipped_surrogate
from prefopt.rl.rewards import sequence_rewards, token_kl
from prefopt.trainer.batching import GlobalBatch
from prefopt.trainer.objective import StatelessObjective

FORWARD_ROWS = 64  # sequences per no-gradient forward when a rollout's log-probs are computed


@dataclass
class Rollout:
    """One sampled response with what RLOO's loss needs of its rollout."""

    prompt_ids: list[int]
    response_ids: list[int]  # EOS included where the response ended with it
    old_logps: torch.Tensor  # (n,) the sampling policy's log-prob of each response token
    advantage: float  # A_i
    score: float  # s_i, the reward judge's score
    kl: float  # sum_t kl_t against pi_ref
    finished: bool  # ended with EOS

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


def collate_samples(items: Sequence, indices: Sequence[int], pad_id: int) -> dict:
    """A micro-batch of sampled responses (dataclasses with ``prompt_ids`` and ``response_ids``):
    input_ids / attention_mask / response_mask (N, T); ``token_mask`` (N, L) and each tensor field
    (n,) as (N, L), aligned on the response's first token and 0-padded; each number field as (N,)
    fp32; ``index`` None (no table holds them)."""
    rows = [items[i] for i in indices]
    batch = build_batch([r.prompt_ids for r in rows], [r.response_ids for r in rows], pad_id)
    lengths = torch.tensor([len(r.response_ids) for r in rows])  # (N,)
    width = int(lengths.max())
    batch["token_mask"] = torch.arange(width)[None, :] < lengths[:, None]  # (N, L)
    for field in fields(rows[0]):
        if field.name in ("prompt_ids", "response_ids"):
            continue
        values = [getattr(r, field.name) for r in rows]
        if torch.is_tensor(values[0]):
            padded = torch.zeros(len(rows), width)  # (N, L)
            for k, value in enumerate(values):
                padded[k, : len(value)] = value
            batch[field.name] = padded
        else:
            batch[field.name] = torch.tensor(values, dtype=torch.float32)  # (N,)
    batch["index"] = None
    batch["num_tokens"] = int(batch["attention_mask"].sum())
    return batch


@torch.no_grad()
def token_logps(model, batch: dict) -> torch.Tensor:
    """(N, L) response-token log-probs of ``model`` in eval mode (its mode restored)."""
    was_training = model.training
    model.eval()
    logps, _, _ = response_token_logps(
        model, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
    )
    model.train(was_training)
    return logps


class RLOORollouts(DrawnSource):
    """RLOO's batch source (module docstring): ``judge`` scores, ``reference`` is pi_ref."""

    def __init__(self, draws: PromptDraws, tokenizer, judge, reference, settings: RLOOSettings):
        self.draws, self.tokenizer, self.judge = draws, tokenizer, judge
        self.reference, self.settings = reference, settings
        self.size = len(draws.prompts)  # an epoch: each training prompt once (k samples each)

    def batch(self, step: int, policy: torch.nn.Module) -> GlobalBatch:
        k = self.settings.samples_per_prompt
        rows = [i for i in self.draws.draw() for _ in range(k)]  # prompt-major: P x k
        prompt_ids = [self.draws.prompt_ids[i] for i in rows]
        drawn = sample_responses(
            policy,
            self.tokenizer,
            prompt_ids,
            max_new_tokens=self.settings.max_new_tokens,
            seed=self.draws.seed(),
        )
        self.draws.spent(drawn.response_ids)
        scores = self.judge.score([self.draws.prompts[i] for i in rows], drawn.texts)
        scores = torch.as_tensor(scores, dtype=torch.float32)  # (P k,)
        finished = torch.tensor(drawn.finished)  # (P k,)
        old, ref, mask = self._logps(policy, prompt_ids, drawn.response_ids)  # (P k, L) x3
        s = self.settings
        rewards = sequence_rewards(
            scores, old, ref, mask, s.kl_coef, finished, s.missing_eos_penalty, s.kl_estimator
        )  # (P k,)
        advantages = rloo_advantages(rewards.view(-1, k)).flatten()  # (P k,)
        kls = token_kl(old, ref, mask, s.kl_estimator).sum(-1)  # (P k,)
        items = [
            Rollout(
                prompt_ids[j],
                drawn.response_ids[j],
                old[j, : len(drawn.response_ids[j])].cpu(),
                float(advantages[j]),
                float(scores[j]),
                float(kls[j]),
                bool(finished[j]),
            )
            for j in range(len(rows))
        ]
        return GlobalBatch(items, list(range(len(items))), collate_samples)

    def _logps(self, policy, prompt_ids, response_ids):
        """(N, L) token log-probs of the responses under the sampling policy and pi_ref, and the
        (N, L) mask, in forwards of :data:`FORWARD_ROWS` sequences."""
        width = max(len(r) for r in response_ids)
        device = next(policy.parameters()).device
        old, ref = [], []
        for start in range(0, len(response_ids), FORWARD_ROWS):
            chunk = slice(start, start + FORWARD_ROWS)
            batch = build_batch(prompt_ids[chunk], response_ids[chunk], self.tokenizer.pad_token_id)
            batch = {name: value.to(device) for name, value in batch.items()}
            policy_logps = token_logps(policy, batch)  # (n, l)
            ref_logps = self.reference.token_logps({**batch, "index": None})  # (n, l)
            pad = (0, width - policy_logps.shape[1])
            old.append(torch.nn.functional.pad(policy_logps, pad))
            ref.append(torch.nn.functional.pad(ref_logps, pad))
        lengths = torch.tensor([len(r) for r in response_ids], device=device)  # (N,)
        mask = torch.arange(width, device=device)[None, :] < lengths[:, None]  # (N, L)
        return torch.cat(old), torch.cat(ref), mask


class RLOOObjective(StatelessObjective):
    """RLOO's clipped sequence-ratio loss on a micro-batch of :func:`collate_samples`."""

    name = "rloo"
    min_batch_size = 1

    def __init__(self, clip_eps: float):
        self.clip_eps = clip_eps

    def micro_batch(
        self, policy: torch.nn.Module, inputs: dict, autocast=contextlib.nullcontext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast():
            logps, lengths, _ = response_token_logps(
                policy, inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"]
            )  # (N, L), (N,)
        mask = inputs["token_mask"]  # (N, L)
        log_ratio = torch.where(mask, logps.float() - inputs["old_logps"], 0.0).sum(-1)  # (N,)
        losses, ratio, clipped = clipped_surrogate(
            log_ratio, inputs["advantage"], self.clip_eps, self.clip_eps
        )  # (N,) x3
        sums = {
            "loss": losses.detach().sum(),
            "rollout_score": inputs["score"].sum(),
            "rollout_kl": inputs["kl"].sum(),
            "rollout_length": lengths.float().sum(),
            "rollout_finished": inputs["finished"].sum(),
            "sequence_clip_fraction": clipped.float().sum(),  # PPO's clip_fraction counts tokens
        }
        return losses, {name: value.float() for name, value in sums.items()}
