"""Study: reward-model over-optimisation under best-of-N (Gao et al., arXiv 2210.10760). Claim
tested: choosing the best of N pi_ref samples by a proxy reward model trained on the task's pairs
raises the proxy's score with N while the gold reward rises, peaks and falls, later (at a larger
d = sqrt(log N - (N - 1) / N)) for a reward model trained on more pairs; the gold gain follows
d (alpha - beta d).

    python experiments/overoptimisation.py --dry-run   # the plan and its measured cost
    python experiments/overoptimisation.py             # into results/overoptimisation/
    python experiments/overoptimisation.py --task reviews_tiny --rm-pairs 16 32 64 --max-n 16 \\
        --samples 32 --out /tmp/overoptimisation        # a smoke test

1. The task (``--task``, conf/task/) is built or loaded, and M = ``--samples`` samples of pi_ref
   per validation prompt are drawn once with the evaluation's sampling settings (conf/eval/),
   cached under cache_dir/reference_samples.
2. For each k of ``--rm-pairs`` a proxy reward model (conf/judge/proxy.yaml) is trained on the
   first k pairs of a seeded permutation of the training pairs (so the sets are nested) and scored
   on the validation pairs (held-out accuracy and its Bayes ceiling).
3. The gold reward and each proxy score all samples; for N = 1, 2, 3, 4, 6, 8, ... up to
   ``--max-n``, the gold and proxy reward of the proxy's best of N are estimated without bias from
   the M samples (prefopt.analysis.overoptimisation), gains taken against N = 1 (pi_ref itself).
4. Writes points.csv (a row per reward model and N), fits.json (d (alpha - beta d) fitted per
   reward model, the models' accuracies, the command) and figures/overoptimisation.{png,pdf}.

Hydra overrides after the options change the composed config, e.g. ``device=cuda judge.epochs=4``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from prefopt.analysis.overoptimisation import (
    best_of_n_estimate,
    bon_kl,
    fit_groups,
    plot_overoptimisation,
)
from prefopt.analysis.style import save_figure
from prefopt.config_values import plain_dict
from prefopt.eval.build import prompt_encoder
from prefopt.eval.judges import build_judge
from prefopt.eval.judges.reward_model import RewardModelJudge
from prefopt.eval.sampling_cache import SamplingSettings, cached_samples, derive_seed
from prefopt.eval.stats import best_of_n_kl_estimate
from prefopt.models.loading import load_frozen_reference, load_tokenizer, model_fingerprint
from prefopt.models.sampling import sample_responses
from prefopt.results.store import atomic_write_json
from prefopt.tasks import build_task
from prefopt.trainer.setup import pick_device

CONF = Path(__file__).resolve().parents[1] / "conf"
OUT = Path("results/overoptimisation")
TASK = "reviews"  # task preset (conf/task/)
RM_PAIRS = (250, 500, 1000, 2000)  # training pairs of each proxy reward model
MAX_N = 256  # largest best-of-N
SAMPLES = 512  # pi_ref samples per prompt (M >= MAX_N): the estimate at N = 256 averages subsets
SEED = 0  # seeds the permutation of the training pairs and pi_ref's samples
SPLIT = "validation"  # prompts best-of-N is measured on, pairs the reward models are scored on
TRAIN_COST = 3  # forward-equivalents per response of a training step (forward and backward)


def compose_config(task: str, overrides=()):
    """conf/ composed for ``task`` with the proxy judge's settings and ``overrides``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[f"task={task}", "judge=proxy", *overrides])


def n_grid(max_n: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, ...: the powers of 2 and 1.5 times them, up to max_n (included)."""
    grid = {1, max_n}
    power = 2
    while power <= max_n:
        grid.update(n for n in (power, 3 * power // 2) if n <= max_n)
        power *= 2
    return sorted(grid)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Setup:
    """The built task, pi_ref, its tokenizer and the validation prompts, from a composed config."""

    def __init__(self, cfg):
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        self.cfg, self.cache_dir = cfg, Path(str(cfg.cache_dir)).expanduser()
        self.device = pick_device(str(cfg.device))
        self.task = build_task(cfg.task)
        self.artifacts = self.task.prepare(self.cache_dir)
        model_dir, model_cfg = self.artifacts.model_dir, plain_dict(cfg.model, "model")
        self.tokenizer = load_tokenizer(model_dir, model_cfg)
        self.model = load_frozen_reference(model_dir, model_cfg).to(self.device)
        self.model_key = model_fingerprint(model_dir, model_cfg)
        self.prompts = [row["prompt"] for row in read_jsonl(self.artifacts.prompt_files[SPLIT])]
        encode = prompt_encoder(self.tokenizer, cfg.data)
        self.prompt_ids = [encode(p) for p in self.prompts]
        self.settings = SamplingSettings.from_config(plain_dict(cfg.eval, "eval"))

    def samples(self, m: int, seed: int) -> np.ndarray:
        """(P, M) texts: M samples of pi_ref per prompt, drawn once and cached."""
        drawn = cached_samples(
            self.model,
            self.tokenizer,
            self.prompt_ids,
            settings=self.settings,
            seed=derive_seed("overoptimisation", seed, SPLIT),
            cache_dir=self.cache_dir,
            model_key=self.model_key,
            label=f"pi_ref {m} samples per {SPLIT} prompt",
            samples_per_prompt=m,
        )
        return np.array(drawn.texts, dtype=object).reshape(m, len(self.prompts)).T

    def reward_model_pairs(self, sizes, seed: int) -> dict[int, list[dict]]:
        """k -> the first k pairs of a seeded permutation of the training pairs (nested sets)."""
        pairs = read_jsonl(self.artifacts.data_files["train"])
        if max(sizes) > len(pairs):
            raise ValueError(f"--rm-pairs {max(sizes)}: the task has {len(pairs)} training pairs")
        order = np.random.default_rng(seed).permutation(len(pairs))
        return {k: [pairs[i] for i in order[:k]] for k in sizes}


def best_of_n_points(gold, proxy, ns) -> list[dict]:
    """A row per N: the proxy's best of N scored by gold and by itself (gold, proxy: (P, M))."""
    gold_1 = best_of_n_estimate(proxy, gold, 1)  # (P,) N = 1: pi_ref's mean
    proxy_1 = best_of_n_estimate(proxy, proxy, 1)  # (P,)
    rows = []
    for n in ns:
        gold_n = best_of_n_estimate(proxy, gold, n)  # (P,)
        proxy_n = best_of_n_estimate(proxy, proxy, n)  # (P,)
        rows.append(
            {
                "n": n,
                "kl": bon_kl(n),
                "d": math.sqrt(bon_kl(n)),
                "kl_estimate": best_of_n_kl_estimate(proxy, n),  # lower where samples tie
                "gold": gold_n.mean(),
                "gold_se": _se(gold_n),
                "gold_gain": (gold_n - gold_1).mean(),
                "gold_gain_se": _se(gold_n - gold_1),
                "proxy": proxy_n.mean(),
                "proxy_gain": (proxy_n - proxy_1).mean(),
            }
        )
    return rows


def _se(values: np.ndarray) -> float:
    """Standard error of the mean over prompts."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def run(args, setup: Setup) -> dict:
    """The study; returns fits.json's content after writing every output into ``args.out``."""
    texts = setup.samples(args.samples, args.seed)  # (P, M)
    prompts = np.repeat(np.array(setup.prompts, dtype=object), args.samples)  # (P * M,) row-major
    flat = texts.reshape(-1)  # (P * M,)
    shape = texts.shape
    gold = setup.task.gold_reward(list(prompts), list(flat)).reshape(shape)  # (P, M)
    heldout = read_jsonl(setup.artifacts.data_files[SPLIT])
    judge_cfg = plain_dict(setup.cfg.judge, "judge")
    ns, rows, models = n_grid(args.max_n), [], {}
    for k, pairs in setup.reward_model_pairs(args.rm_pairs, args.seed).items():
        judge = build_judge(
            judge_cfg, setup.task, setup.cache_dir, pairs, str(setup.device), heldout_pairs=heldout
        )
        proxy = judge.score(list(prompts), list(flat)).reshape(shape)  # (P, M)
        rows += [{"rm_pairs": k, **row} for row in best_of_n_points(gold, proxy, ns)]
        models[k] = {key: judge.info.get(key) for key in ("heldout_accuracy", "bayes_accuracy")}
    points = pd.DataFrame(rows)
    fits = fit_groups(points, "bon")
    args.out.mkdir(parents=True, exist_ok=True)
    points.to_csv(args.out / "points.csv", index=False, float_format="%.6g")
    save_figure(
        plot_overoptimisation(points, "bon", fits=fits), args.out / "figures", "overoptimisation"
    )
    result = {
        "command": args.command,
        "prompts": shape[0],
        "samples_per_prompt": shape[1],
        "reward_models": {
            str(k): {**models[k], **vars(fits[k]), "peak_kl": fits[k].peak_d ** 2} for k in fits
        },
    }
    atomic_write_json(args.out / "fits.json", result)
    return result


def dry_run(args, setup: Setup) -> None:
    """Print the plan and its cost from one timed batch of sampling and scoring."""
    p, m, batch = len(setup.prompts), args.samples, setup.settings.batch_size
    probe = (setup.prompt_ids * math.ceil(batch / p))[:batch]  # one full batch
    start = time.perf_counter()
    texts = sample_responses(
        setup.model, setup.tokenizer, probe, seed=args.seed, **asdict(setup.settings)
    ).texts
    per_sample = (time.perf_counter() - start) / len(probe)
    start = time.perf_counter()
    probe_prompts = (setup.prompts * math.ceil(batch / p))[:batch]
    setup.task.gold_reward(probe_prompts, texts)
    per_gold = (time.perf_counter() - start) / len(probe)
    judge_cfg = plain_dict(setup.cfg.judge, "judge")
    scorer = RewardModelJudge(  # untrained: the proxy's architecture and batching, for timing
        str(setup.artifacts.model_dir),
        batch_size=int(judge_cfg["batch_size"]),
        max_length=int(judge_cfg["max_length"]),
        device=str(setup.device),
    )
    start = time.perf_counter()
    scorer.score(probe_prompts, texts)
    per_score = (time.perf_counter() - start) / len(probe)
    scored = p * m * len(args.rm_pairs)
    trained = 2 * sum(args.rm_pairs) * int(judge_cfg["epochs"])  # responses through training
    seconds = {
        "sampling (skipped when cached)": p * m * per_sample,
        "gold reward": p * m * per_gold,
        "reward-model training": trained * TRAIN_COST * per_score,
        "proxy scoring": scored * per_score,
    }
    print(
        f"Plan: {len(args.rm_pairs)} proxy reward models on {list(args.rm_pairs)} training pairs "
        f"({judge_cfg['epochs']} epochs each); {p} {SPLIT} prompts x M = {m} pi_ref samples = "
        f"{p * m:,} samples, each scored by the gold reward and every proxy ({scored:,} proxy "
        f"scorings); best-of-N for N in {n_grid(args.max_n)}; on {setup.device}."
    )
    for what, value in seconds.items():
        print(f"  {what}: ~{_duration(value)}")
    print(
        f"Estimated total: ~{_duration(sum(seconds.values()))} (from one batch of {len(probe)} "
        f"prompts; training counted as {TRAIN_COST} forwards per response)."
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=TASK, help="task preset (conf/task/)")
    parser.add_argument("--rm-pairs", type=int, nargs="+", default=list(RM_PAIRS))
    parser.add_argument("--max-n", type=int, default=MAX_N, help="largest best-of-N")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="pi_ref samples per prompt")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its cost")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the composed config")
    args = parser.parse_args(argv)
    if args.samples < args.max_n:
        parser.error(f"--samples {args.samples} must be at least --max-n {args.max_n}")
    if min(args.rm_pairs) < 1:
        parser.error("--rm-pairs must be positive")
    args.rm_pairs = sorted(set(args.rm_pairs))
    args.command = shlex.join(
        ["python", "experiments/overoptimisation.py", *(argv or sys.argv[1:])]
    )
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    setup = Setup(compose_config(args.task, args.overrides))
    if args.dry_run:
        dry_run(args, setup)
        return
    result = run(args, setup)
    for k, fit in result["reward_models"].items():
        print(
            f"{k} pairs: held-out accuracy {fit['heldout_accuracy']:.3f}, gold gain fit "
            f"alpha {fit['alpha']:.3f} beta {fit['beta']:.3f} (rms {fit['rms_residual']:.3f}), "
            f"peak at d {fit['peak_d']:.2f}"
        )
    print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
