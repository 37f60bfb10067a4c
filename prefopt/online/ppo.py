"""PPO with a KL penalty to pi_ref, a separate value model and GAE, as InstructGPT runs it.

Proximal Policy Optimization Algorithms. Schulman, Wolski, Dhariwal, Radford, Klimov, arXiv
1707.06347. Training language models to follow instructions with human feedback. Ouyang et al.,
arXiv 2203.02155 (the KL-penalised reward; the value model initialised from the reward model).
Fine-Tuning Language Models from Human Preferences. Ziegler et al., arXiv 1909.08593 (the
adaptive KL controller).

A rollout (:class:`PPORollouts`) samples one response to each of ``rollout_prompts`` training prompts
from the current policy (temperature 1), scores it with the reward judge (a reward model trained on
the run's pairs, or the gold reward: PPO-GT) and computes without gradient, per response token t:

    r_t  = -beta kl_t + s' [t = last]      (s' = s - missing_eos_penalty [no EOS]; prefopt.rl.rewards)
    A_t, G_t = GAE(r, V_old; gamma, lam)   (prefopt.rl.advantages; A whitened over the rollout)

with kl_t the per-token KL estimate against pi_ref and V_old the value model's. Then ``ppo_epochs``
passes over the rollout in a fresh random order, in minibatches of ``trainer.batch_size`` responses,
are as many optimiser steps (:class:`PPOObjective`), each minimising

    L = mean_t -min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) + vf_coef * L_V

(rho_t = pi / pi_old of token t, L_V the clipped value loss of prefopt.rl.objectives), token means
over the micro-batch. beta is fixed (``kl_target`` null) or follows Ziegler et al.'s controller
towards ``kl_target`` nats per response, updated once per rollout. Responses that end without EOS
(cut at ``max_new_tokens``) keep their score unless ``missing_eos_penalty`` is set. The rollout (its
samples and minibatch orders) and beta are the source's checkpointed state, so a run cut between two
steps of one rollout resumes exactly. Train rows log ``policy_loss``, ``value_loss``,
``clip_fraction``, ``value_clip_fraction``, ``approx_kl`` (k3 of pi_old to pi), ``kl_coef`` and the
``rollout_*`` means of the step's responses, as RLOO's rows do.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

from prefopt.models.logprobs import build_batch, response_token_logps
from prefopt.models.sampling import sample_responses
from prefopt.online.draws import DrawnSource, PromptDraws
from prefopt.online.rollouts import collate_samples, token_logps
from prefopt.online.settings import PPOSettings
from prefopt.online.value_model import ValueModel
from prefopt.rl.advantages import gae, masked_whiten
from prefopt.rl.kl_control import AdaptiveKLController, FixedKLController
from prefopt.rl.objectives import clipped_surrogate, clipped_value_errors
from prefopt.rl.rewards import token_kl, token_rewards
from prefopt.trainer.batching import GlobalBatch
from prefopt.trainer.objective import StatelessObjective

FORWARD_ROWS = 64  # sequences per no-gradient forward when a rollout's quantities are computed


@dataclass
class PPOSample:
    """One sampled response with what PPO's loss needs of its rollout; tensors are (n,) per token."""

    prompt_ids: list[int]
    response_ids: list[int]  # EOS included where the response ended with it
    old_logps: torch.Tensor  # (n,) the sampling policy's token log-probs
    old_values: torch.Tensor  # (n,) V_old
    advantages: torch.Tensor  # (n,) A_t (whitened)
    returns: torch.Tensor  # (n,) G_t
    score: float  # s, the reward judge's score
    kl: float  # sum_t kl_t against pi_ref
    finished: bool  # ended with EOS
    kl_coef: float  # beta of the rollout's rewards

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


def kl_controller(settings: PPOSettings):
    """A fixed beta, or the adaptive controller when ``kl_target`` is set."""
    if settings.kl_target is None:
        return FixedKLController(settings.kl_coef)
    return AdaptiveKLController(settings.kl_coef, settings.kl_target, settings.kl_horizon)


class PPORollouts(DrawnSource):
    """PPO's batch source (module docstring): minibatches of the current rollout."""

    def __init__(
        self,
        draws: PromptDraws,
        tokenizer,
        judge,
        reference,
        value_model: ValueModel,
        settings: PPOSettings,
        minibatch_size: int,
    ):
        if settings.rollout_prompts % minibatch_size:
            raise ValueError(
                f"online.rollout_prompts={settings.rollout_prompts} is not a multiple of "
                f"trainer.batch_size={minibatch_size} (responses per PPO minibatch)"
            )
        self.draws, self.tokenizer, self.judge = draws, tokenizer, judge
        self.reference, self.value_model, self.settings = reference, value_model, settings
        self.minibatch_size = minibatch_size
        self.minibatches = settings.rollout_prompts // minibatch_size
        self.steps_per_rollout = settings.ppo_epochs * self.minibatches
        self.size = len(draws.prompts) * settings.ppo_epochs  # an epoch: each prompt once
        self.kl = kl_controller(settings)
        self.rollout_index, self.samples, self.orders = -1, [], []

    def batch(self, step: int, policy: torch.nn.Module) -> GlobalBatch:
        rollout, offset = divmod(step, self.steps_per_rollout)
        if rollout != self.rollout_index:
            self.samples = self._rollout(policy)
            self.orders = [
                torch.randperm(len(self.samples), generator=self.draws.generator).tolist()
                for _ in range(self.settings.ppo_epochs)
            ]
            self.rollout_index = rollout
        epoch, minibatch = divmod(offset, self.minibatches)
        size = self.minibatch_size
        indices = self.orders[epoch][minibatch * size : (minibatch + 1) * size]
        return GlobalBatch(self.samples, indices, collate_samples)

    def _rollout(self, policy: torch.nn.Module) -> list[PPOSample]:
        """Sample, score and compute the rollout's advantages and returns; update beta."""
        rows = self.draws.draw()
        prompt_ids = [self.draws.prompt_ids[i] for i in rows]
        s = self.settings
        drawn = sample_responses(
            policy,
            self.tokenizer,
            prompt_ids,
            max_new_tokens=s.max_new_tokens,
            seed=self.draws.seed(),
        )
        self.draws.spent(drawn.response_ids)
        scores = self.judge.score([self.draws.prompts[i] for i in rows], drawn.texts)
        scores = torch.as_tensor(scores, dtype=torch.float32)  # (N,)
        finished = torch.tensor(drawn.finished)  # (N,)
        old, ref, values, mask = self._forwards(policy, prompt_ids, drawn.response_ids)  # (N, L)
        beta = self.kl.kl_coef
        rewards = token_rewards(
            scores.to(old.device),
            old,
            ref,
            mask,
            beta,
            finished.to(old.device),
            s.missing_eos_penalty,
            s.kl_estimator,
        )  # (N, L)
        advantages, returns = gae(rewards, values, mask, s.gamma, s.lam)  # (N, L) x2
        if s.whiten_advantages:
            advantages = masked_whiten(advantages, mask)  # (N, L)
        kls = token_kl(old, ref, mask, s.kl_estimator).sum(-1)  # (N,)
        self.kl.update(float(kls.mean()), len(rows))
        samples = []
        for j, response in enumerate(drawn.response_ids):
            n = len(response)
            samples.append(
                PPOSample(
                    prompt_ids[j],
                    response,
                    *(t[j, :n].cpu() for t in (old, values, advantages, returns)),
                    float(scores[j]),
                    float(kls[j]),
                    bool(finished[j]),
                    float(beta),
                )
            )
        return samples

    def _forwards(self, policy, prompt_ids, response_ids):
        """(N, L) token log-probs under the sampling policy and pi_ref, V_old, and the mask."""
        width = max(len(r) for r in response_ids)
        device = next(policy.parameters()).device
        columns: list[list[torch.Tensor]] = [[], [], []]
        for start in range(0, len(response_ids), FORWARD_ROWS):
            chunk = slice(start, start + FORWARD_ROWS)
            batch = build_batch(prompt_ids[chunk], response_ids[chunk], self.tokenizer.pad_token_id)
            batch = {name: value.to(device) for name, value in batch.items()}
            parts = (
                token_logps(policy, batch),
                self.reference.token_logps({**batch, "index": None}),
                self.value_model.rollout_values(batch),
            )  # (n, l) x3
            for column, part in zip(columns, parts, strict=True):
                column.append(torch.nn.functional.pad(part, (0, width - part.shape[1])))
        lengths = torch.tensor([len(r) for r in response_ids], device=device)  # (N,)
        mask = torch.arange(width, device=device)[None, :] < lengths[:, None]  # (N, L)
        return (*(torch.cat(column) for column in columns), mask)

    def state_dict(self) -> dict:
        return {
            "draws": self.draws.state_dict(),
            "kl": self.kl.state_dict(),
            "rollout_index": self.rollout_index,
            "samples": [asdict(sample) for sample in self.samples],
            "orders": self.orders,
        }

    def load_state_dict(self, state: dict) -> None:
        self.draws.load_state_dict(state["draws"])
        self.kl.load_state_dict(state["kl"])
        self.rollout_index = int(state["rollout_index"])
        self.samples = [PPOSample(**sample) for sample in state["samples"]]
        self.orders = [list(order) for order in state["orders"]]


class PPOObjective(StatelessObjective):
    """PPO's clipped policy loss plus ``vf_coef`` times the clipped value loss, per response: each
    response's token sum, scaled so that the micro-batch's mean is the token mean."""

    name = "ppo"
    min_batch_size = 1

    def __init__(self, value_model: ValueModel, settings: PPOSettings):
        self.value_model, self.settings = value_model, settings

    def micro_batch(
        self, policy: torch.nn.Module, inputs: dict, autocast=contextlib.nullcontext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        with autocast():
            logps, lengths, _ = response_token_logps(
                policy, inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"]
            )  # (N, L), (N,)
            values = self.value_model.values(inputs)  # (N, L)
        mask = inputs["token_mask"]  # (N, L)
        log_ratio = torch.where(mask, logps.float() - inputs["old_logps"], 0.0)  # (N, L)
        surrogate, ratio, clipped = clipped_surrogate(
            log_ratio, torch.where(mask, inputs["advantages"], 0.0), s.clip_eps, s.clip_eps
        )  # (N, L) x3
        errors, value_clipped = clipped_value_errors(
            values, inputs["old_values"], inputs["returns"], s.value_clip
        )  # (N, L) x2
        scale = mask.shape[0] / mask.sum()  # a response's token sum x scale: token means
        policy_losses = (surrogate * mask).sum(-1) * scale  # (N,)
        value_losses = (errors * mask).sum(-1) * scale  # (N,)
        with torch.no_grad():
            k3 = (ratio - 1.0 - log_ratio) * mask  # (N, L)
            sums = {
                "loss": (policy_losses + s.vf_coef * value_losses).sum(),
                "policy_loss": policy_losses.sum(),
                "value_loss": value_losses.sum(),
                "clip_fraction": ((clipped & mask).sum(-1) * scale).sum(),
                "value_clip_fraction": ((value_clipped & mask).sum(-1) * scale).sum(),
                "approx_kl": (k3.sum(-1) * scale).sum(),
                "kl_coef": inputs["kl_coef"].sum(),
                "rollout_score": inputs["score"].sum(),
                "rollout_kl": inputs["kl"].sum(),
                "rollout_length": lengths.float().sum(),
                "rollout_finished": inputs["finished"].sum(),
            }
        losses = policy_losses + s.vf_coef * value_losses  # (N,)
        return losses, {name: value.float() for name, value in sums.items()}
