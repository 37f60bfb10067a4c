"""Win rate against pi_ref on held-out prompts, with the numbers around it.

For each prompt x_i of a split, the policy draws k samples y_i1 .. y_ik and pi_ref's m cached samples
y'_i1 .. y'_im (drawn independently, once per sweep) are the reference; k and m are
eval_cfg.policy_samples_per_prompt and reference_samples_per_prompt, or on the test split
test_policy_samples_per_prompt and test_reference_samples_per_prompt when set. The judge gives one
preference per comparison, p_iab = P(y_ia better than y'_ib) (ties half), and the prompt's
preference is their mean p_i = (1/(k m)) sum_ab p_iab: still one number per prompt, so the t interval
over prompts stays valid, and the luck of the draws on either side shrinks: the per-prompt variance
from the draws is about 1/(12k) + 1/(12m) for comparable policies. ``Evaluator.evaluate`` returns:

- win_rate = mean_i p_i, win_rate_ci_low / win_rate_ci_high (95% t interval over prompts);
- lc_win_rate: the win rate at zero length difference (AlpacaEval-style logistic fit over the N*k*m
  comparisons, each with its own length difference |y_ia| - |y'_ib|);
- win_rate_short / win_rate_long: mean p_iab over the comparisons where y_ia is no longer / longer
  than y'_ib; long_frac, the share of comparisons in the second;
- judge_reward, ref_judge_reward: mean rewards (pointwise judges only; over all N*k and N*m samples);
- kl, kl_se = mean over all N*k samples of log pi(y|x) - log pi_ref(y|x) and its standard error
  over prompts (of the prompts' means); named logratio, logratio_se unless y was drawn at
  temperature 1 without top-k/top-p;
- length, ref_length (tokens, EOS not counted), truncated_frac (no EOS), over all samples;
  distinct_1, distinct_2 over one sample per prompt (the mean over the k such sets: pooling more
  responses would lower it);
- the judge's response metrics averaged (e.g. grammatical) and pi_ref's as ref_<name> (over all);
- proxy_reward, ref_proxy_reward with a proxy judge; eval_seconds.

A pointwise judge scores pi_ref's samples once; a pairwise judge is called m times per evaluation,
each call comparing the N*k policy samples with one of pi_ref's m sets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prefopt.eval.judges.base import Judge, check_preferences, check_scores
from prefopt.eval.responses import content_lengths, response_logps
from prefopt.eval.sample_plan import samples_per_prompt, select_prompts
from prefopt.eval.samples_file import write_samples
from prefopt.eval.sampling_cache import SamplingSettings, cached_samples, derive_seed
from prefopt.eval.settings import eval_value
from prefopt.eval.stats import (
    best_of_n_kl_bound,
    best_of_n_kl_estimate,
    distinct_n,
    length_bucket_win_rates,
    length_controlled_win_rate,
    mean_and_se,
    preferences_from_scores,
    win_rate_ci,
)
from prefopt.models.sampling import Samples, sample_responses

log = logging.getLogger(__name__)


@dataclass
class ReferenceSide:
    """pi_ref's m samples per prompt on one split and what the judges said about them (computed
    once). Sample j of prompt i is ``samples`` entry j * N + i; arrays are (m, N)."""

    samples: Samples  # m * N samples in m blocks of the N prompts
    lengths: np.ndarray  # (m, N) response tokens, EOS not counted
    rewards: np.ndarray | None  # (m, N) judge rewards; None for a pairwise judge
    proxy_rewards: np.ndarray | None  # (m, N) proxy judge rewards, when a proxy judge is given
    metrics: dict[str, float]  # the judge's response metrics, averaged over all m * N samples

    @property
    def texts(self) -> list[list[str]]:
        """(m, N) response texts: ``texts[j][i]`` is sample j of prompt i."""
        return blocks_of(self.samples.texts, self.lengths.shape[0])


def blocks_of(items: Sequence, count: int) -> list[list]:
    """``items`` (count * N, in ``count`` blocks of the N prompts) as ``count`` lists of N."""
    n = len(items) // count
    return [list(items[j * n : (j + 1) * n]) for j in range(count)]


class Evaluator:
    """Evaluates policies against pi_ref on the prompts of each split.

    ``prompts`` maps a split name ("validation", "test") to its prompt strings; the first
    ``eval_cfg.num_prompts`` of each are used (all when null). Each prompt's k policy samples are
    judged against m of pi_ref's (``samples_per_prompt[split]``, module docstring).
    ``encode_prompt`` turns a prompt into token ids the way training does (default: the tokenizer
    without special tokens).
    ``control_ids`` are a conditioned loss's (good, bad) control tokens: the good one ends every
    prompt the policy samples from and is scored under, and the policy never draws either (pi_ref
    has no embedding for them); pi_ref and the judges see the plain prompts and the responses.
    """

    def __init__(
        self,
        eval_cfg: Mapping,
        judge: Judge,
        tokenizer,
        reference_model: torch.nn.Module,
        prompts: Mapping[str, Sequence[str]],
        cache_dir: str | Path,
        baseline_fingerprint: str,
        proxy_judge: Judge | None = None,
        device: str = "cpu",
        encode_prompt: Callable[[str], list[int]] | None = None,
        control_ids: Sequence[int] = (),
    ):
        self.settings = SamplingSettings.from_config(eval_cfg)
        self.reference_seed = int(eval_value(eval_cfg, "reference_seed"))
        self.best_of_n_samples = eval_value(eval_cfg, "best_of_n_samples")
        self.judge = judge
        self.proxy_judge = proxy_judge
        if proxy_judge is not None and not proxy_judge.pointwise:
            raise ValueError(f"the proxy judge must be pointwise; {proxy_judge.name!r} is not")
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.reference_model = reference_model.to(self.device)
        self.cache_dir = Path(cache_dir)
        self.baseline_fingerprint = str(baseline_fingerprint)
        encode = encode_prompt or (
            lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
        )
        self.prompts, self.prompt_ids = select_prompts(
            prompts, eval_value(eval_cfg, "num_prompts"), encode
        )
        self.samples_per_prompt = samples_per_prompt(eval_cfg, self.prompts)
        self.control_ids = list(control_ids)
        self._reference: dict[str, ReferenceSide] = {}

    @property
    def splits(self) -> list[str]:
        return list(self.prompts)

    # ---------------------------------------------------------------- pi_ref's side
    def reference(self, split: str) -> ReferenceSide:
        """pi_ref's m samples per prompt on ``split`` (from the disk cache when there) and their
        judgements."""
        self._check_split(split)
        if split not in self._reference:
            m = self.samples_per_prompt[split].reference
            samples = cached_samples(
                self.reference_model,
                self.tokenizer,
                self.prompt_ids[split],
                settings=self.settings,
                seed=derive_seed("reference", self.reference_seed, split),
                cache_dir=self.cache_dir,
                model_key=self.baseline_fingerprint,
                label=f"pi_ref samples for split {split!r}",
                samples_per_prompt=m,
            )
            prompts = list(self.prompts[split]) * m  # (m * N,) in the samples' block order
            rewards = self._score(self.judge, prompts, samples.texts)
            proxy_rewards = self._score(self.proxy_judge, prompts, samples.texts)
            self._reference[split] = ReferenceSide(
                samples=samples,
                lengths=content_lengths(samples).reshape(m, -1),
                rewards=None if rewards is None else rewards.reshape(m, -1),
                proxy_rewards=None if proxy_rewards is None else proxy_rewards.reshape(m, -1),
                metrics=self._response_metrics(prompts, samples.texts),
            )
        return self._reference[split]

    # ---------------------------------------------------------------- policy evaluation
    def evaluate(
        self,
        policy: torch.nn.Module,
        split: str,
        step: int,
        seed: int,
        samples_path: str | Path | None = None,
    ) -> dict[str, float]:
        """Sample ``policy`` on the split's prompts and judge it against pi_ref (keys in the module
        docstring); the sampling seed comes from (seed, step, split), apart from training's."""
        start = time.perf_counter()
        ref = self.reference(split)
        k, n = self.samples_per_prompt[split].policy, len(self.prompts[split])
        prompts = list(self.prompts[split]) * k  # (k * N,) in the samples' block order
        prompt_ids = self.prompt_ids[split] * k  # (k * N,)
        policy_prompt_ids = [[*ids, *self.control_ids[:1]] for ids in prompt_ids]
        samples = sample_responses(
            policy,
            self.tokenizer,
            policy_prompt_ids,
            seed=derive_seed("policy", seed, step, split),
            banned_ids=self.control_ids,
            **vars(self.settings),
        )  # k blocks of the N prompts: sample a of prompt i is entry a * N + i
        rewards = self._score(self.judge, prompts, samples.texts)  # (k * N,)
        comparisons = self._comparisons(prompts, samples.texts, rewards, ref, k)  # (k, m, N)
        preferences = comparisons.mean(axis=(0, 1))  # (N,) p_i
        lengths = content_lengths(samples).reshape(k, n)  # (k, N)
        length_diff = lengths[:, None, :] - ref.lengths[None, :, :]  # (k, m, N)
        policy_logps = response_logps(
            policy,
            policy_prompt_ids,
            samples,
            self.tokenizer.pad_token_id,
            self.settings.batch_size,
        )
        ref_logps = response_logps(
            self.reference_model,
            prompt_ids,
            samples,
            self.tokenizer.pad_token_id,
            self.settings.batch_size,
        )
        logratios = (policy_logps - ref_logps).reshape(k, n)  # (k, N)

        win, low, high = win_rate_ci(preferences)
        metrics = {"win_rate": win, "win_rate_ci_low": low, "win_rate_ci_high": high}
        each_p, each_diff = comparisons.ravel(), length_diff.ravel()  # (k * m * N,) per comparison
        metrics["lc_win_rate"] = length_controlled_win_rate(each_p, each_diff)
        metrics.update(length_bucket_win_rates(each_p, each_diff))
        if rewards is not None:
            metrics["judge_reward"] = float(rewards.mean())
            metrics["ref_judge_reward"] = float(ref.rewards.mean())
        name = "kl" if self.settings.samples_the_model else "logratio"
        metrics[name], metrics[f"{name}_se"] = mean_and_se(logratios.mean(axis=0))  # over prompts
        metrics["length"] = float(lengths.mean())
        metrics["ref_length"] = float(ref.lengths.mean())
        metrics["truncated_frac"] = float(1.0 - np.mean(samples.finished))
        content = [
            ids[: int(c)] for ids, c in zip(samples.response_ids, lengths.ravel(), strict=True)
        ]
        for size in (1, 2):
            metrics[f"distinct_{size}"] = float(
                np.mean([distinct_n(block, size) for block in blocks_of(content, k)])
            )
        for key, value in self._response_metrics(prompts, samples.texts).items():
            _add_new_key(metrics, key, value)
        for key, value in ref.metrics.items():
            _add_new_key(metrics, f"ref_{key}", value)
        proxy_rewards = self._score(self.proxy_judge, prompts, samples.texts)
        if proxy_rewards is not None:
            metrics["proxy_reward"] = float(proxy_rewards.mean())
            metrics["ref_proxy_reward"] = float(ref.proxy_rewards.mean())
        if samples_path is not None:
            write_samples(
                Path(samples_path),
                self.prompts[split],
                samples,
                ref,
                None if rewards is None else rewards.reshape(k, n),
                comparisons,
                lengths,
                logratios,
            )
        metrics["eval_seconds"] = time.perf_counter() - start
        return metrics

    # ---------------------------------------------------------------- best-of-n baseline
    def best_of_n(self, split: str, ns: Sequence[int], seed: int = 0) -> list[dict]:
        """Best-of-n sampling from pi_ref under the judge, for each n in ``ns`` (eval.best_of_n_ns).

        Draws M = max(max(ns), eval_cfg.best_of_n_samples) samples per prompt from pi_ref (cached
        on disk), picks the judge's best of the first n, and reports its mean reward, its win rate
        against pi_ref's evaluation sample, the KL bound log n - (n-1)/n and the plug-in estimate
        from the M samples' rewards (lower when rewards tie). The win rate is judged as in
        :meth:`evaluate`: against each of pi_ref's m evaluation samples, averaged.
        """
        if not self.judge.pointwise:
            raise ValueError(f"best-of-n needs a pointwise judge; {self.judge.name!r} is pairwise")
        ns = [int(n) for n in ns]
        if not ns or min(ns) < 1:
            raise ValueError(f"best-of-n sizes must be positive integers, got {ns}")
        ref = self.reference(split)
        prompts, prompt_ids = self.prompts[split], self.prompt_ids[split]
        m = max(max(ns), int(self.best_of_n_samples or 0))
        samples = cached_samples(
            self.reference_model,
            self.tokenizer,
            prompt_ids,
            settings=self.settings,
            seed=derive_seed("best_of_n", seed, split),
            cache_dir=self.cache_dir,
            model_key=self.baseline_fingerprint,
            label=f"pi_ref best-of-{m} samples for split {split!r}",
            samples_per_prompt=m,  # M blocks of all prompts
        )
        scores = self._score(self.judge, list(prompts) * m, samples.texts)
        rewards = scores.reshape(m, len(prompts)).T  # (P, M)
        rows = []
        for n in ns:
            best = rewards[:, :n].max(axis=1)  # (P,)
            rows.append(
                {
                    "n": n,
                    "kl_bound": best_of_n_kl_bound(n),
                    "kl_estimate": best_of_n_kl_estimate(rewards, n),
                    "judge_reward": float(best.mean()),
                    "win_rate": float(preferences_from_scores(best[None, :], ref.rewards).mean()),
                }
            )
        return rows

    # ---------------------------------------------------------------- helpers
    def _check_split(self, split: str) -> None:
        if split not in self.prompts:
            raise ValueError(f"unknown split {split!r}; this evaluator has {self.splits}")

    def _comparisons(self, prompts, texts, rewards, ref: ReferenceSide, k: int) -> np.ndarray:
        """p_iab = P(policy's y_ia better than pi_ref's y'_ib) (k, m, N) for the k * N policy
        samples (k blocks of the N prompts): from the rewards for a pointwise judge, else one
        ``compare`` call per reference set b, over all k * N policy samples."""
        if self.judge.pointwise:
            policy = rewards.reshape(k, 1, -1)  # (k, 1, N)
            return preferences_from_scores(policy, ref.rewards[None, :, :])  # (k, m, N)
        per_set = [
            check_preferences(
                self.judge.compare(prompts, texts, ref_texts * k), len(prompts), self.judge.name
            ).reshape(k, -1)  # (k, N)
            for ref_texts in ref.texts
        ]
        return np.stack(per_set, axis=1)  # (k, m, N)

    def _score(self, judge: Judge | None, prompts, texts) -> np.ndarray | None:
        """The judge's checked rewards (N,), or None for no judge or a pairwise one."""
        if judge is None or not judge.pointwise:
            return None
        return check_scores(judge.score(prompts, texts), len(prompts), judge.name)

    def _response_metrics(self, prompts, texts) -> dict[str, float]:
        """The judge's response metrics averaged over the responses they apply to (NaN = does not
        apply); a metric that applies to none is left out."""
        out = {}
        for key, values in self.judge.response_metrics(prompts, texts).items():
            array = np.asarray(values, dtype=np.float64)
            if array.shape != (len(prompts),) or np.isinf(array).any():
                raise ValueError(
                    f"judge {self.judge.name!r} response metric {key!r}: expected "
                    f"({len(prompts)},) finite or NaN values, got shape {array.shape}"
                    + (" with inf" if array.shape == (len(prompts),) else "")
                )
            if not np.isnan(array).all():
                out[key] = float(np.nanmean(array))
        return out


def _add_new_key(metrics: dict, key: str, value: float) -> None:
    if key in metrics:
        raise ValueError(f"the judge's response metric {key!r} clashes with a built-in metric")
    metrics[key] = value
