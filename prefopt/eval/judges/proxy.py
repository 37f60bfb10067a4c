"""A proxy reward model trained on the run's own preference pairs (Gao et al. 2210.10760).

Initialised from a causal LM directory (pi_ref's) as ``AutoModelForSequenceClassification`` with one
output, it is fitted with the Bradley-Terry loss

    L = -mean log sigmoid(r(x, y_w) - r(x, y_l))

over the (prompt, chosen, rejected) string pairs. The trained model is cached under
``<cache_dir>/proxy_reward/<hash of (model dir, pairs, settings)>`` and loaded from there
afterwards, so every run of a sweep that trains on the same data shares one proxy.
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
from prefopt.models.loading import model_fingerprint
from prefopt.results.store import atomic_write_json

log = logging.getLogger(__name__)

PAIR_KEYS = ("prompt", "chosen", "rejected")


class ProxyRewardJudge(Judge):
    """Pointwise judge from a Bradley-Terry reward model trained (or loaded) at construction."""

    name = "proxy"
    pointwise = True

    def __init__(
        self,
        model_dir: str | Path,
        train_pairs: Sequence[Mapping[str, str]],
        cache_dir: str | Path,
        *,
        epochs: int = 2,
        lr: float = 1e-4,
        batch_size: int = 16,
        max_length: int = 256,
        separator: str = " ",
        seed: int = 0,
        device: str = "cpu",
    ):
        pairs = _check_pairs(train_pairs)
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

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.reward_model.score(prompts, responses)


def _check_pairs(train_pairs: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    if not train_pairs:
        raise ValueError("the proxy reward model needs training pairs; got none")
    pairs = []
    for i, pair in enumerate(train_pairs):
        missing = [k for k in PAIR_KEYS if k not in pair]
        if missing:
            raise ValueError(f"training pair {i} lacks {missing}; each needs keys {PAIR_KEYS}")
        pairs.append({k: str(pair[k]) for k in PAIR_KEYS})
    return pairs


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
