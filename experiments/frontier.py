"""Study: the reward-KL frontier of the offline losses against the RLHF baselines, and its cost.

Claim tested (the DPO paper's, its Fig. 2): offline DPO reaches the gold reward that PPO reaches at
the same KL to pi_ref, at a fraction of the cost; PPO against a learned reward model over-optimises
it (its score keeps rising while the gold reward falls) where DPO does not; and noisy labels hurt
DPO no more than the reward-model-then-PPO pipeline. Design: each method at three strengths (its
beta, tau, lambda or KL coefficient around the default), lr 1e-3 (the log-midpoint of every search
space), 250 optimiser steps, three seeds, validation evaluated every 25 steps with the gold
reward, KL and the proxy reward model's score; label-flip rates 0, 0.2 and 0.4 for DPO and PPO
against the reward model. Every evaluation point is a point of the frontier.

    python experiments/frontier.py --dry-run          # runs x measured time per run, nothing run
    python experiments/frontier.py                    # train (resumable), export, then the report
    python experiments/frontier.py export             # runs.parquet, points.csv from the runs so far
    python experiments/frontier.py report             # the report from results/frontier/points.csv

The study spans sessions as the comparison protocol's do (protocol.carry_in, carry_out): its runs
live under multirun/frontier/{methods,noise} with the study's own cache; `export` writes
results/frontier/runs.parquet (every run, finished runs restorable) and the task build, and `run`
first restores them, so that finished runs are skipped in the next session.

The report (results/frontier/): the frontier figure (gold reward and win rate against KL), each
method's frontier at KL budgets with a t-interval over seeds, the cost of first reaching a gold
reward (median over seeds: tokens generated, tokens trained, reward or gold queries, the offline
data's generation and labels included), and points.csv, the compact data behind all of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from protocol import EPOCHS, carry_in, carry_out, launch, study_cache, study_dir, study_results
from study_data import export_study, markdown_lines, read_study

STRENGTHS = {  # method -> (search space, the strength's key, three values around its default)
    "dpo": ("dpo", "loss.beta", "0.1,0.5,2.0"),
    "ipo": ("ipo", "loss.beta", "0.5,2.0,8.0"),
    "kto": ("kto", "loss.beta", "0.1,0.3,1.0"),
    "simpo": ("simpo", "loss.beta", "1.0,3.0,10.0"),
    "orpo": ("orpo", "loss.beta", "0.1,0.5,2.0"),
    "sft": ("sft", None, None),  # Preferred-FT: no strength
    "ppo": ("ppo", "online.kl_coef", "0.02,0.1,0.5"),
    "ppo_rm": ("ppo_rm", "online.kl_coef", "0.02,0.1,0.5"),
    "rloo": ("rloo", "online.kl_coef", "0.02,0.1,0.5"),
    "online_dpo": ("online_dpo", "loss.beta", "0.1,0.5,2.0"),
}
# the label-noise arms: method -> (its strength's key, the value its clean arm also runs)
NOISY = {"dpo": ("loss.beta", 0.5), "ppo_rm": ("online.kl_coef", 0.1)}
FLIP_RATES = "0.2,0.4"  # the noisy arms' label-flip rates; rate 0 is the clean arm's run
PHASES = ("methods", "noise")  # the study's sweeps: multirun/<study>/<phase>
RL_METHODS = ("ppo", "ppo_rm", "rloo")  # fitted with Gao et al.'s RL form
COMMON = [
    "seed=1,2,3",
    "trainer.lr=1e-3",
    "trainer.max_steps=250",
    f"trainer.epochs={EPOCHS}",  # enough that the 250 steps bind for every method
    "eval.eval_every=25",
    "eval.test_at=never",
    "eval.proxy=true",  # the reward model's score of the samples: over-optimisation shows in it
    "launcher=joblib",
]
BUDGETS = (0.5, 1.0, 2.0, 4.0)  # nats of KL at which the frontiers are compared
POINT_COLUMNS = [
    "run_label",
    "status",
    "seed",
    "task.flip_rate",
    "task.n_train_pairs",
    "loss.beta",
    "online.kl_coef",
    "step",
    "kl",
    "judge_reward",
    "proxy_reward",
    "win_rate",
]
COSTS = ["tokens_generated", "tokens_trained", "reward_queries"]


def commands(study: str) -> dict[str, list[str]]:
    """Each arm's multirun: the methods at their strengths (multirun/<study>/methods), and the
    label-noise arms at their flip rates (multirun/<study>/noise), all in the study's cache."""
    common = [f"cache_dir={study_cache(study)}", *COMMON]
    arms = {}
    for method, (space, key, values) in STRENGTHS.items():
        grid = [f"{key}={values}"] if key else []
        arms[method] = [f"name={study}/{PHASES[0]}", f"experiment=search/{space}", *grid, *common]
    for method, (key, value) in NOISY.items():
        arms[f"{method}_noise"] = [
            f"name={study}/{PHASES[1]}",
            f"experiment=search/{STRENGTHS[method][0]}",
            f"{key}={value}",
            f"task.flip_rate={FLIP_RATES}",
            *common,
        ]
    return arms


def points_from_study(path: Path) -> pd.DataFrame:
    """One row per validation evaluation of every run in the study file `path`: where it lies
    (KL, gold, proxy, win rate) and what the run had spent by then (the train row of the same
    step)."""
    frame, _ = read_study(path)
    phases = set(frame["phase"]) - set(PHASES)
    tasks = set(frame["task.name"].dropna()) if "task.name" in frame else set()
    if phases or len(tasks) > 1:
        raise ValueError(
            f"{path}: runs outside {PHASES} ({sorted(phases)}) or of several tasks "
            f"({sorted(tasks)}); one study is one task, give another task its own --study"
        )
    evals = frame[frame["split"] == "validation"]
    spent = frame[frame["split"] == "train"].reindex(columns=["run_id", "step", *COSTS])
    points = evals.merge(spent, on=["run_id", "step"], how="left")
    for name in COSTS:
        points[name] = points[name].fillna(0)  # step 0, and offline runs' reward queries
    return points.reindex(columns=[*POINT_COLUMNS, "run_id", *COSTS]).reset_index(drop=True)


def offline_data_cost(points: pd.DataFrame) -> dict[str, int]:
    """What the offline methods' data cost before training: pi_ref's samples (two per pair)
    and one label per pair (the task's n_train_pairs; the same data for every offline run)."""
    pairs = int(points["task.n_train_pairs"].max())
    return {"pairs labelled": pairs, "pi_ref samples": 2 * pairs}


def cost_to_reach(points: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per method, the median over seeds of what the first point with gold >= target cost."""
    rows = []
    clean = points[points["task.flip_rate"].fillna(0) == 0]
    for method, group in clean.groupby("run_label"):
        firsts = []
        for _, runs in group.groupby("seed"):
            reached = runs[runs["judge_reward"] >= target].sort_values(["tokens_trained"])
            if not reached.empty:
                firsts.append(reached.iloc[0][COSTS])
        row = {"method": method, "seeds_reached": len(firsts), "seeds": group["seed"].nunique()}
        if firsts:
            row.update(pd.DataFrame(firsts).median().to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def rl_fits(points: pd.DataFrame) -> pd.DataFrame:
    """Gao et al.'s RL form fitted to each online method's gold and proxy gains over pi_ref
    against d = sqrt(KL), every evaluation point after step 0 of every setting and seed."""
    from prefopt.analysis import fit_rl

    rows = []
    for method, group in points[points["run_label"].isin(RL_METHODS)].groupby("run_label"):
        start = group[group["step"] == 0]
        later = group[(group["step"] > 0) & (group["kl"] > 0)]
        for reward in ("judge_reward", "proxy_reward"):
            if later[reward].isna().all():
                continue
            gain = later[reward] - start[reward].mean()
            fit = fit_rl(later["kl"] ** 0.5, gain)
            rows.append(
                {
                    "method": method,
                    "reward": reward,
                    "alpha": fit.alpha,
                    "beta": fit.beta,
                    "peak_sqrt_kl": fit.peak_d,
                    "rms": fit.rms_residual,
                    "points": fit.n_points,
                }
            )
    return pd.DataFrame(rows)


def noise_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per noisy arm and flip rate: each seed's best validation gold reward, mean and t-interval."""
    from prefopt.analysis.stats import t_interval

    rows = []
    arms = [
        points[(points["run_label"] == method) & np.isclose(points[key], value)]
        for method, (key, value) in NOISY.items()
    ]
    noisy = pd.concat(arms).assign(flip=lambda f: f["task.flip_rate"].fillna(0.0))
    for (method, flip), group in noisy.groupby(["run_label", "flip"]):
        interval = t_interval(group.groupby("seed")["judge_reward"].max())
        rows.append(
            {
                "method": method,
                "flip_rate": flip,
                "gold": interval.mean,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "seeds": interval.n_seeds,
            }
        )
    return pd.DataFrame(rows)


def report(points: pd.DataFrame, out: Path) -> Path:
    """The figure, the frontier table and the cost table under ``out``."""
    from prefopt.analysis import plot_frontier, reward_at_kl_by_seed, save_figure

    clean = points[points["task.flip_rate"].fillna(0) == 0].assign(split="validation")
    save_figure(plot_frontier(clean, method="run_label"), out / "figures", "frontier")
    table = reward_at_kl_by_seed(clean, budgets=BUDGETS, method="run_label")
    target = float(clean.loc[clean["step"] == 0, "judge_reward"].mean()) + 1.0
    lines = [
        "# The reward-KL frontier: offline losses against the RLHF baselines",
        "",
        "![frontier](figures/frontier.png)",
        "",
        "## Gold reward at a KL budget (frontier per seed, mean and 95% t-interval over seeds)",
        "",
        *markdown_lines(table),
        f"## Cost of first reaching gold reward {target:.2f} (pi_ref's + 1), median over seeds",
        "",
        *markdown_lines(cost_to_reach(clean, target)),
        "Offline methods' data: "
        + ", ".join(f"{k} {v}" for k, v in offline_data_cost(points).items()),
        "",
    ]
    lines += [
        "## Over-optimisation along RL training (Gao et al.: R(d) = d (alpha - beta log d))",
        "",
    ]
    lines += markdown_lines(rl_fits(clean))
    lines += ["## Label noise: best validation gold reward per run, over seeds (95% t)", ""]
    lines += markdown_lines(noise_table(points))
    path = out / "report.md"
    path.write_text("\n".join(lines))
    print(f"wrote {path}")
    return path


def export(study: str) -> Path:
    """results/<study>/runs.parquet and its task build from the runs so far, then points.csv."""
    data = export_study(study_dir(study), study_results(study) / "runs.parquet")
    carry_out(study)
    points = study_results(study) / "points.csv"
    points_from_study(data).to_csv(points, index=False)
    print(f"wrote {points}")
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", nargs="?", choices=("run", "export", "report"), default="run")
    parser.add_argument("--study", default="frontier", help="multirun/<study>, results/<study>")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")
    parser.add_argument("extra", nargs="*", help="more overrides for every run (task=...)")
    args = parser.parse_intermixed_args(argv)
    if args.phase == "run":
        if not args.dry_run:
            carry_in(args.study)
        launch("frontier", args.study, commands(args.study), args.extra, args.dry_run)
        if args.dry_run:
            return
    if args.phase in ("run", "export"):
        export(args.study)
    out = study_results(args.study)
    report(pd.read_csv(out / "points.csv"), out)


if __name__ == "__main__":
    main()
