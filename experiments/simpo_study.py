"""The SimPO study: why SimPO fails on the built-in tasks, on both tasks, 3 seeds.

    python experiments/simpo_study.py run [--dry-run] [overrides...]   # multirun/simpo/
    python experiments/simpo_study.py report                           # results/simpo/

Claim tested (results/simpo/README.md states it before the runs): SimPO's collapse (the policy's
KL to pi_ref runs away and its responses stop being grammatical) has a cause that one ablation
removes. Design, every run 4 epochs (248 optimiser steps over the 2,000 train pairs, batch 32),
evaluated every quarter epoch (16 evaluations), seeds 0-2, on `reviews` and `constraints`:

- grid: SimPO at lr 1e-5, 3e-5, 1e-4 x beta 2, 10 x gamma/beta 0, 0.3 (run_label `simpo`);
- ablations at beta 2, gamma 0.6 (gamma/beta 0.3), lr 1e-4 and 5e-4 (the trainer's default), each
  against SimPO at the same setting and seed: `simpo_reference` (length-normalised DPO with the
  margin: sigmoid_norm, beta 2, gamma 0.6), `simpo_sum` (no length normalisation; beta 0.15 so that
  beta x a typical 14-token length matches SimPO's scale), `cpo_simpo` (nll_weight 1), `simpo_eos`
  (simpo_eos_excluded), and on reviews only `simpo_no_rambling` (SimPO with the task's rambling
  penalty at 0: another gold reward and other labels).

The report reads each run's test win rate at its best validation checkpoint, its final
validation grammatical share and KL, and compares each ablation with SimPO by the mean over seeds
of the seed-paired difference, with a Student t interval over the 3 seeds (t_2 = 4.30).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from study import frame_figure, run_or_report
from study_data import export_study, markdown_lines, read_study, write_markdown

NAME = "simpo"
SWEEP = Path("multirun") / NAME
RESULTS = Path("results") / NAME
TASKS = ("reviews", "constraints")
SEEDS = (0, 1, 2)
EPOCHS = 4  # 248 optimiser steps
LRS = (1e-5, 3e-5, 1e-4)  # the grid's learning rates
BETAS = (2.0, 10.0)
GAMMA_RATIOS = (0.0, 0.3)  # gamma / beta
ABLATION_LRS = (1e-4, 5e-4)  # 5e-4: the trainer's default lr
ABLATION_BETA, ABLATION_GAMMA = 2.0, 0.6  # gamma / beta 0.3
SUM_BETA = 0.15  # simpo_sum's beta: 0.15 x 14 tokens ~ SimPO's 2 on per-token averages
BASELINE = "simpo"
# variant -> (overrides beyond beta, gamma and lr, tasks it runs on)
ABLATIONS = {
    "simpo": (["loss=simpo"], TASKS),
    "simpo_reference": (["loss=sigmoid_norm"], TASKS),
    "simpo_sum": (["loss=simpo", "loss.length_normalize=false", f"loss.beta={SUM_BETA}"], TASKS),
    "cpo_simpo": (["loss=simpo", "loss.nll_weight=1.0"], TASKS),
    "simpo_eos": (["loss=simpo_eos_excluded"], TASKS),
    "simpo_no_rambling": (["loss=simpo", "task.rambling_penalty=0"], ("reviews",)),
}
EVALUATION = [  # the main job's test sampling: 4 policy samples per prompt against 16 of pi_ref's
    "eval.test_policy_samples_per_prompt=4",
    "eval.test_reference_samples_per_prompt=16",
]


def common(label: str, tasks, extra) -> list[str]:
    """Overrides of every run of one multirun: sweep, label, length, seeds, tasks, launcher."""
    return [
        f"name={NAME}",
        f"run_label={label}",
        f"trainer.epochs={EPOCHS}",
        "seed=" + ",".join(str(s) for s in SEEDS),
        "task=" + ",".join(tasks),
        "launcher=joblib",
        *EVALUATION,
        *extra,
    ]


def commands(extra: list[str]) -> list[list[str]]:
    """Every multirun of the study: the grid (one per beta and gamma) then the ablations."""
    runs = []
    for beta in BETAS:
        for ratio in GAMMA_RATIOS:
            runs.append(
                [
                    *common("simpo", TASKS, extra),
                    "loss=simpo",
                    f"loss.beta={beta:g}",
                    f"loss.gamma={ratio * beta:g}",
                    "trainer.lr=" + ",".join(f"{lr:g}" for lr in LRS),
                ]
            )
    for label, (overrides, tasks) in ABLATIONS.items():
        lrs = [lr for lr in ABLATION_LRS if label != BASELINE or lr not in LRS]
        beta = (
            []
            if any(o.startswith("loss.beta=") for o in overrides)
            else [f"loss.beta={ABLATION_BETA:g}"]
        )
        runs.append(
            [
                *common(label, tasks, extra),
                *overrides,
                *beta,
                f"loss.gamma={ABLATION_GAMMA:g}",
                "trainer.lr=" + ",".join(f"{lr:g}" for lr in lrs),
            ]
        )
    return runs


def run_outcomes(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run: task, variant, beta, gamma, lr, seed, the best validation step and
    win rate, the test win rate there, and the final validation grammatical share and KL."""
    from prefopt.analysis.selection import checkpoint_rows

    chosen = checkpoint_rows(rows.assign(run_dir=rows["run_id"]), "best", "win_rate")
    chosen = chosen[chosen["status"] == "finished"]
    validation = rows[rows["split"] == "validation"].sort_values("step")
    final = validation.groupby("run_id").tail(1).set_index("run_id")
    worst = validation.groupby("run_id")["grammatical"].min()
    return pd.DataFrame(
        {
            "task": chosen["task.name"].to_numpy(),
            "variant": chosen["run_label"].to_numpy(),
            "beta": chosen["loss.beta"].to_numpy(),
            "gamma": chosen["loss.gamma"].to_numpy(),
            "lr": chosen["trainer.lr"].to_numpy(),
            "seed": chosen["seed"].to_numpy(),
            "best_step": chosen["step"].to_numpy(),
            "best_validation": 100 * chosen["score"].to_numpy(),
            "test_win_rate": 100 * chosen["win_rate"].to_numpy(),
            "final_grammatical": 100 * final.loc[chosen["run_id"], "grammatical"].to_numpy(),
            "min_grammatical": 100 * worst.loc[chosen["run_id"]].to_numpy(),
            "final_kl": final.loc[chosen["run_id"], "kl"].to_numpy(),
        }
    )


def paired_effects(outcomes: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Each ablation minus SimPO at the same task, lr and seed: mean over seeds and its 95% t
    interval (NaN with fewer than 2 seeds), per metric."""
    from prefopt.analysis.stats import t_interval

    ablated = outcomes[outcomes["variant"] != BASELINE]
    plain = outcomes[
        (outcomes["variant"] == BASELINE)
        & (outcomes["beta"] == ABLATION_BETA)
        & (outcomes["gamma"] == ABLATION_GAMMA)
    ].set_index(["task", "lr", "seed"])
    rows = []
    for (task, lr, variant), runs in ablated.groupby(["task", "lr", "variant"]):
        row = {"task": task, "lr": lr, "variant": variant}
        keys = [(task, lr, seed) for seed in runs["seed"]]
        present = [k in plain.index for k in keys]
        for metric in metrics:
            differences = (
                runs[metric].to_numpy()[present]
                - plain.loc[[k for k, p in zip(keys, present, strict=True) if p], metric].to_numpy()
            )
            interval = t_interval(differences)
            row[f"{metric} diff"] = interval.mean
            row[f"{metric} low"] = interval.low
            row[f"{metric} high"] = interval.high
        row["seeds"] = int(sum(present))
        rows.append(row)
    return pd.DataFrame(rows)


def report() -> Path:
    """results/simpo/: runs.parquet (every run's rows and test prompt scores), report.md, figures."""
    data = export_study(SWEEP, RESULTS / "runs.parquet")
    rows, _ = read_study(data)
    outcomes = run_outcomes(rows)
    metrics = ("test_win_rate", "final_grammatical", "final_kl")
    grid = outcomes[outcomes["variant"] == BASELINE]
    by_setting = (
        grid.groupby(["task", "beta", "gamma", "lr"])
        .agg(
            seeds=("seed", "count"),
            at_start=("best_step", lambda s: int((s == 0).sum())),
            best_step=("best_step", "mean"),
            test_win_rate=("test_win_rate", "mean"),
            final_grammatical=("final_grammatical", "mean"),
            min_grammatical=("min_grammatical", "mean"),
            final_kl=("final_kl", "mean"),
        )
        .reset_index()
    )
    variants = (
        outcomes[outcomes["gamma"] == ABLATION_GAMMA]  # SimPO at beta 2 and every ablation
        .groupby(["task", "lr", "variant"])[[*metrics, "best_step"]]
        .mean()
        .reset_index()
    )
    variants = variants[variants["lr"].isin(ABLATION_LRS)]
    effects = paired_effects(outcomes, metrics)
    lines = [
        "# SimPO study: report",
        "",
        f"From {data.name}: {rows['run_id'].nunique()} runs. Win rates in %, against pi_ref's "
        "samples; test at each run's best validation checkpoint (at_start: seeds whose best is "
        "step 0, pi_ref itself); grammatical and KL at the last validation evaluation.",
        "",
        "## SimPO over its grid (means over seeds)",
        "",
        *markdown_lines(by_setting),
        f"## Ablations at beta {ABLATION_BETA:g}, gamma {ABLATION_GAMMA:g} (means over seeds)",
        "",
        *markdown_lines(variants),
        "## Each ablation minus SimPO, paired by seed (mean, 95% t interval over seeds)",
        "",
        *markdown_lines(effects),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    outcomes.to_csv(RESULTS / "outcomes.csv", index=False)
    for task in TASKS:
        part = rows[(rows["task.name"] == task) & rows["trainer.lr"].isin(ABLATION_LRS)]
        part = part[(part["loss.gamma"] == ABLATION_GAMMA)]
        if part.empty:
            continue
        part.attrs = rows.attrs
        frame_figure(part, RESULTS, f"by_run_label_{task}", "run_label", group="trainer.lr")
        lines += [f"![{task}](figures/by_run_label_{task}.png)", ""]
    return write_markdown(RESULTS / "report.md", lines)


def main(argv: list[str] | None = None) -> None:
    run_or_report(__doc__.split("\n\n")[0], commands, report, argv, sweep=SWEEP)


if __name__ == "__main__":
    main()
