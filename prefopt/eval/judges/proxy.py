"""A proxy reward model trained on the run's own preference pairs (Gao et al. 2210.10760).

Initialised from a causal LM directory (pi_ref's) as ``AutoModelForSequenceClassification`` with one
output, it is fitted with the Bradley-Terry loss

    L = -mean log sigmoid(r(x, y_w) - r(x, y_l))

over the (prompt, chosen, rejected) string pairs. The trained model is cached under
``<cache_dir>/proxy_reward/<hash of (model dir, pairs, settings)>`` and loaded from there
afterwards, so every run of a sweep that trains on the same data shares one proxy.

Its ``train_info.json`` records the training (pairs, final loss, last epoch's accuracy), the mean
and population standard deviation of the trained model's rewards over the training pairs' 2P
responses (chosen and rejected), and, per set of held-out pairs (keyed by its hash, so held-out
pairs never change the model's key), the held-out accuracy and its Bayes ceiling
(:func:`prefopt.eval.judges.reward_stats.heldout_report`); ``info`` holds them for this judge.

With ``normalize`` the judge scores

    s(x, y) = (r(x, y) - reward_mean) / reward_std

so the training responses' scores have mean 0 and standard deviation 1, as OpenRLHF normalises its
reward model's outputs (it takes the moments over its evaluation pairs, with the unbiased standard
deviation clamped at 1e-8). The map is increasing, so accuracies and preferences do not change.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prefopt.eval.hashing import stable_hash
from prefopt.eval.judges.base import Judge
from prefopt.eval.judges.reward_model import RewardModelJudge
from prefopt.eval.judges.reward_stats import (
    check_pairs,
    heldout_report,
    reward_moments,
)
from prefopt.models.loading import model_fingerprint
from prefopt.results.store import atomic_write_json, read_json

log = logging.getLogger(__name__)


class ProxyRewardJudge(Judge):
    """Pointwise judge from a Bradley-Terry reward model trained (or loaded) at construction.

    ``heldout_pairs``: pairs ({prompt, chosen, rejected}, optionally ``preference_prob``) to report
    the trained model's held-out accuracy on; none (or empty) reports none. ``normalize`` changes
    the scores, so it also changes the name (proxy:normalized).
    """

    name = "proxy"
    pointwise = True

    def __init__(
        self,
        model_dir: str | Path,
        train_pairs: Sequence[Mapping[str, str]],
        cache_dir: str | Path,
        *,
        heldout_pairs: Sequence[Mapping] | None = None,
        normalize: bool = False,
        epochs: int = 2,
        lr: float = 1e-4,
        batch_size: int = 16,
        max_length: int = 256,
        separator: str = " ",
        seed: int = 0,
        device: str = "cpu",
    ):
        if not train_pairs:
            raise ValueError("the proxy reward model needs training pairs; got none")
        pairs = check_pairs(train_pairs, "training")
        heldout = check_pairs(heldout_pairs or [], "held-out", keep_prob=True)
        settings = dict(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            separator=separator,
            seed=seed,
        )
        key = stable_hash(
            {"model": model_fingerprint(model_dir, {}), "pairs": stable_hash(pairs), **settings}
        )
        self.path = Path(cache_dir) / "proxy_reward" / key
        if (self.path / "train_info.json").exists():
            log.info("proxy reward model loaded from %s", self.path)
        else:
            _train_and_save(model_dir, pairs, self.path, device=device, **settings)
            log.info("proxy reward model trained on %d pairs, saved to %s", len(pairs), self.path)
        self.reward_model = RewardModelJudge(
            str(self.path),
            separator=separator,
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            name="proxy",
        )
        self.info = self._measure(pairs, heldout)
        self.normalize = normalize
        self.name = "proxy:normalized" if normalize else "proxy"
        if normalize and not self.info["reward_std"] > 0:
            raise ValueError(
                f"the proxy reward model at {self.path} gives every training response the same "
                "reward; its rewards cannot be normalised"
            )

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        rewards = self.reward_model.score(prompts, responses)  # (N,)
        if not self.normalize:
            return rewards
        return (rewards - self.info["reward_mean"]) / self.info["reward_std"]

    def _measure(self, pairs: list[dict], heldout: list[dict]) -> dict:
        """train_info.json's records, plus what it lacks for these pairs, measured and saved: the
        reward moments over the training responses and the held-out report of ``heldout``."""
        info_path = self.path / "train_info.json"
        info = read_json(info_path)
        moments = {} if "reward_mean" in info else reward_moments(self.reward_model, pairs)
        key = stable_hash(heldout)
        report = info.get("heldout", {}).get(key, {}) if heldout else {}
        new_reports = {}
        if heldout and not report:
            report = new_reports[key] = heldout_report(self.reward_model, heldout)
            log.info("proxy reward model on %d held-out pairs: %s", len(heldout), report)
        if moments or new_reports:
            _add_to_info(info_path, moments, new_reports)
        recorded = {k: v for k, v in info.items() if k != "heldout"}
        return recorded | moments | report


def _add_to_info(path: Path, moments: dict, reports: dict) -> None:
    """Add to train_info.json as it is now (another run may have added its held-out set since)."""
    latest = read_json(path)
    latest |= moments
    latest["heldout"] = {**latest.get("heldout", {}), **reports}
    atomic_write_json(path, latest)


def _train_and_save(
    model_dir, pairs, path: Path, *, epochs, lr, batch_size, max_length, separator, seed, device
) -> None:
    """Fit the Bradley-Terry loss and save model and tokenizer to ``path`` atomically."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the new score head's initialisation and the shuffling
        judge = RewardModelJudge(
            str(model_dir),
            separator=separator,
            batch_size=batch_size,
            max_length=max_length,
            device=device,
        )
        model = judge.model
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        losses, correct = [], []
        for _ in range(epochs):
            order = torch.randperm(len(pairs)).tolist()
            for start in range(0, len(pairs), batch_size):
                chunk = [pairs[i] for i in order[start : start + batch_size]]
                prompts = [p["prompt"] for p in chunk]
                rewards = judge.rewards(
                    prompts + prompts,
                    [p["chosen"] for p in chunk] + [p["rejected"] for p in chunk],
                )  # (2b,)
                margin = rewards[: len(chunk)] - rewards[len(chunk) :]  # (b,)
                loss = -F.logsigmoid(margin).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                correct.extend((margin > 0).tolist())
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        model.save_pretrained(staging)
        judge.tokenizer.save_pretrained(staging)
        last_epoch = correct[-len(pairs) :]
        atomic_write_json(
            staging / "train_info.json",
            {
                "pairs": len(pairs),
                "final_loss": losses[-1],
                "last_epoch_accuracy": float(np.mean(last_epoch)),
            },
        )
        try:
            os.replace(staging, path)
        except OSError:  # another process saved the same model first: keep theirs
            if not (path / "train_info.json").exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
