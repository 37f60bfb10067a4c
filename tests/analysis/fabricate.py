"""Fabricate a sweep's run store with planted values, in the schema the trainer writes.

Every finished run's held-out win rate rises to a planted peak at a planted step and then falls,
while its training loss keeps falling. Per-prompt samples are drawn so that the policy beats the
reference with the planted probability: policy_reward = reference_reward + d, d ~ N(Phi^-1(p), 1).
One run failed, one is still running and one has a config but no summary (incomplete).
With `eval_at_start`, every run is also evaluated at step 0, where the policy is pi_ref itself: win
rate 0.5 in expectation, KL 0 and reward accuracy 0.5 (every implicit-reward margin is 0: a tie). The loss
"orpo" is planted below pi_ref from its first step, so its best checkpoint is then the start.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

# planted peak win rate minus 0.5 (orpo's is negative: a trough, the policy gets worse than pi_ref);
# rdpo is planted equal to dpo in everything: a method with no effect
LOSS_QUALITY = {"dpo": 0.15, "ipo": 0.25, "simpo": 0.08, "orpo": -0.3, "rdpo": 0.15}
PEAK_STEP = {"dpo": 40, "ipo": 60, "simpo": 30, "orpo": 10, "rdpo": 40}  # step of the peak
BEST_CONFIG = {  # (beta, lr)
    "dpo": (0.1, 1e-4),
    "ipo": (0.5, 1e-4),
    "simpo": (0.5, 5e-4),
    "orpo": (0.1, 1e-4),
    "rdpo": (0.1, 1e-4),
}
CONFIG_BONUS = 0.1  # planted gain of a loss's best (beta, lr) over its other configs
BAYES_ACCURACY = 0.8  # planted Bayes-optimal accuracy of the held-out pairs
STEPS_PER_EPOCH = 25


@dataclass
class PlantedSweep:
    """Where the sweep is and what was planted in it."""

    root: Path
    losses: tuple[str, ...]
    betas: tuple[float, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    eval_steps: tuple[int, ...]
    n_prompts: int
    best_method: str = "ipo"
    failed_run: str = ""
    running_run: str = ""
    incomplete_run: str = ""
    run_ids: list[str] = field(default_factory=list)


def planted_win_rate(loss: str, beta: float, lr: float, step: float) -> float:
    """0.5 at step 0, a peak of 0.5 + quality (+ bonus) at the planted step, then a decline."""
    peak = 0.5 + LOSS_QUALITY[loss] + (CONFIG_BONUS if (beta, lr) == BEST_CONFIG[loss] else 0.0)
    peak_step = PEAK_STEP[loss]
    if step <= peak_step:
        return 0.5 + (peak - 0.5) * math.sin(0.5 * math.pi * step / peak_step)
    return peak - 0.003 * (step - peak_step)


def fabricate_sweep(
    root: str | Path,
    losses: tuple[str, ...] = ("dpo", "ipo", "simpo"),
    betas: tuple[float, ...] = (0.1, 0.5),
    lrs: tuple[float, ...] = (1e-4, 5e-4),
    seeds: tuple[int, ...] = (0, 1, 2),
    total_steps: int = 100,
    eval_every: int = 10,
    n_prompts: int = 40,
    rng_seed: int = 0,
    eval_at_start: bool = False,
    unfinished: bool = True,
    task: str | None = None,
) -> PlantedSweep:
    """Write the sweep under `root` (runs at depth 2: loss=<name>/beta=..,lr=..,seed=..).

    `eval_at_start`: evaluate at step 0 too; `unfinished`: plant the failed, running and
    incomplete runs (else every run finishes); `task`: the runs' `task.name` (none by default)."""
    root = Path(root)
    rng = np.random.default_rng(rng_seed)
    first_eval = 0 if eval_at_start else eval_every
    eval_steps = tuple(range(first_eval, total_steps + 1, eval_every))
    sweep = PlantedSweep(root, losses, betas, lrs, seeds, eval_steps, n_prompts)
    specials = {
        ("dpo", betas[-1], lrs[-1], seeds[-1]): "failed",
        ("simpo", *BEST_CONFIG["simpo"], seeds[-1]): "running",
        ("ipo", betas[0], lrs[-1], seeds[-1]): "incomplete",
    }
    if not unfinished:
        specials = {}
    for loss in losses:
        for beta in betas:
            for lr in lrs:
                for seed in seeds:
                    run_id = f"loss={loss}/beta={beta},lr={lr},seed={seed}"
                    status = specials.get((loss, beta, lr, seed), "finished")
                    if status != "finished":
                        setattr(sweep, f"{status}_run", run_id)
                    stop = {"finished": total_steps, "failed": 30, "running": 50}.get(status, 0)
                    _write_run(root / run_id, loss, beta, lr, seed, status, stop, sweep, rng, task)
                    sweep.run_ids.append(run_id)
    _write_best_of_n(root / f"loss={losses[0]}/beta={betas[0]},lr={lrs[0]},seed={seeds[0]}")
    return sweep


def _write_run(run_dir, loss, beta, lr, seed, status, stop, sweep, rng, task=None) -> None:
    run_dir.mkdir(parents=True)
    config = {
        "loss": {"name": loss, "beta": beta},
        "trainer": {"lr": lr, "epochs": 4, "batch_size": 8},
        "seed": seed,
        "data": {"name": "synthetic", "flip_rate": 0.0},
        "model": {"name": "tiny-gpt", "lora": False},
        "run_label": loss,  # the method's name, as prefopt.train sets it
    }
    if task is not None:
        config["task"] = {"name": task}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"loss={loss}", f"loss.beta={beta}", f"trainer.lr={lr}", f"seed={seed}"]
    (run_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status == "incomplete":
        return
    rows, finals = [], {}
    for step in range(0, stop + 1, 5):
        if step > 0:
            rows.append(_train_row(step, beta, lr, rng))
        if step in sweep.eval_steps:
            for split in ("validation", "test"):
                row = _eval_row(run_dir, loss, beta, lr, step, split, sweep.n_prompts, rng)
                rows.append(row)
                finals[split] = row
    with (run_dir / "metrics.jsonl").open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    evaluated = [r for r in rows if r["split"] == "validation"]
    best = max(evaluated, key=lambda r: r["win_rate"]) if evaluated else None
    best_test = next(
        (r for r in rows if r["split"] == "test" and best and r["step"] == best["step"]), None
    )
    summary = {
        "status": status,
        "error": "RuntimeError: loss is NaN at step 31" if status == "failed" else None,
        "steps": stop,
        "final": finals if status == "finished" else {},
        "best": {
            "step": best["step"],
            "epoch": best["epoch"],
            "validation": best,
            "test": best_test,
        },
        "train_seconds": 12.5,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "provenance.json").write_text(json.dumps({"git_commit": "0" * 40}))


def _train_row(step, beta, lr, rng) -> dict:
    decay = math.exp(-step * lr / 2e-3)
    return {
        "split": "train",
        "step": step,
        "epoch": step / STEPS_PER_EPOCH,
        "loss": math.log(2) * decay + 0.01 * rng.standard_normal(),
        "reward_accuracy": 1.0 - 0.5 * decay,
        "reward_margin": beta * 10 * (1 - decay),
        "chosen_logps": -40.0 - 0.05 * step,
        "rejected_logps": -40.0 - 0.15 * step,
        "chosen_rewards": -beta * 0.05 * step,
        "rejected_rewards": -beta * 0.15 * step,
        "grad_norm": 1.0 + 0.1 * rng.standard_normal(),
        "lr": lr,
    }


def _eval_row(run_dir, loss, beta, lr, step, split, n_prompts, rng) -> dict:
    p = planted_win_rate(loss, beta, lr, step)
    reference = rng.standard_normal(n_prompts)
    policy = reference + stats.norm.ppf(p) + rng.standard_normal(n_prompts)
    policy_length = 30 + 0.1 * step + rng.standard_normal(n_prompts)
    reference_length = np.full(n_prompts, 30.0)
    samples = run_dir / "samples" / f"step_{step:07d}_{split}.jsonl"
    samples.parent.mkdir(exist_ok=True)
    with samples.open("w") as out:
        for index in range(n_prompts):
            record = {
                "prompt_index": index,
                "prompt": f"prompt {index}",
                "policy": "policy text",
                "reference": "reference text",
                "policy_reward": float(policy[index]),
                "reference_reward": float(reference[index]),
                "policy_length": float(policy_length[index]),
                "reference_length": float(reference_length[index]),
            }
            out.write(json.dumps(record) + "\n")
    wins = float(np.mean((policy > reference) + 0.5 * (policy == reference)))
    half_width = 1.96 * math.sqrt(wins * (1 - wins) / n_prompts)
    kl = step * lr / (beta * 1e-3) * 0.02
    heldout_loss = 0.69 - 0.3 * math.sin(math.pi * min(step, 60) / 120) + 0.004 * max(0, step - 60)
    row = {
        "split": split,
        "step": step,
        "epoch": step / STEPS_PER_EPOCH,
        "win_rate": wins,
        "win_rate_ci_low": max(0.0, wins - half_width),
        "win_rate_ci_high": min(1.0, wins + half_width),
        "lc_win_rate": wins - 0.002 * (float(policy_length.mean()) - 30.0),
        "judge_reward": float(policy.mean()),
        "ref_judge_reward": float(reference.mean()),
        "proxy_reward": float(policy.mean()) + 0.01 * step,
        "kl": kl,
        "kl_se": 0.1 * kl,
        "length": float(policy_length.mean()),
        "ref_length": 30.0,
        "truncated_frac": 0.0,
        "distinct_1": 0.6,
        "distinct_2": 0.8,
        "grammatical": 0.95 - 0.001 * step,
        "loss": heldout_loss,
        "reward_accuracy": min(BAYES_ACCURACY, 0.5 + 0.3 * p),
        "reward_margin": 0.5 * p,
        "chosen_logps": -40.0 - 0.05 * step,
        "rejected_logps": -40.0 - 0.15 * step,
        "chosen_rewards": -beta * 0.05 * step,
        "rejected_rewards": -beta * 0.15 * step,
        "bayes_accuracy": BAYES_ACCURACY,
    }
    if step == 0:  # pi_ref itself: every implicit-reward margin is 0
        row.update(reward_accuracy=0.5, reward_margin=0.0, chosen_rewards=0.0, rejected_rewards=0.0)
    return row


def set_metrics(sweep: PlantedSweep, split: str, loss: str | None = None, **values) -> None:
    """Overwrite `values` in every `split` row of metrics.jsonl of the runs of `loss` (all losses
    when None); per-prompt samples files are left as they are."""
    for run_id in sweep.run_ids:
        path = sweep.root / run_id / "metrics.jsonl"
        if (loss is not None and not run_id.startswith(f"loss={loss}/")) or not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        rows = [{**row, **values} if row["split"] == split else row for row in rows]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_best_of_n(run_dir: Path) -> None:
    """Best-of-N from pi_ref: KL bound log N - (N-1)/N, reward rising like sqrt of it."""
    points = []
    for n in (1, 2, 4, 8, 16, 32):
        bound = math.log(n) - (n - 1) / n
        points.append(
            {
                "n": n,
                "kl_bound": bound,
                "kl_estimate": 0.9 * bound,
                "judge_reward": 0.8 * math.sqrt(bound),
                "win_rate": 0.5 + 0.3 * math.sqrt(bound) / (1 + math.sqrt(bound)),
            }
        )
    (run_dir / "best_of_n.json").write_text(json.dumps(points))
