"""DPO against SFT (Preferred-FT) at the same epochs and learning rates, on both tasks, 5 seeds.

    python experiments/sft_study.py run [--dry-run] [overrides...]   # multirun/sft_vs_dpo/
    python experiments/sft_study.py report                           # results/sft_vs_dpo/

Claims tested (results/sft_vs_dpo/README.md states them before the runs): DPO overfits faster than
supervised fine-tuning on the chosen responses, and tolerates high learning rates worse. Design:
DPO (beta 0.5, its default) and SFT, each at the learning-rate study's rates 1e-4, 3e-4, 1e-3 and
3e-3, constant, no warm-up, 7 epochs (the overfitting study's length, 434 optimiser steps of 32
pairs), validation evaluated twice per epoch, seeds 0-4, on `reviews` and `constraints`.

Per run the report reads the validation curve (its peak, the drop from the peak to the last
evaluation, and the onset of overfitting against the evaluation noise,
prefopt.analysis.overfitting), the test win rate at the best validation checkpoint and the last
evaluation's grammatical share and KL. Per task and learning rate it gives DPO minus SFT over
seeds: the difference of the means, its Welch 95% interval and the exact permutation p-value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from study import frame_figure, run_or_report
from study_data import export_study, markdown_lines, read_study, write_markdown

NAME = "sft_vs_dpo"
SWEEP = Path("multirun") / NAME
RESULTS = Path("results") / NAME
TASKS = ("reviews", "constraints")
LOSSES = ("dpo", "sft")
LRS = (1e-4, 3e-4, 1e-3, 3e-3)  # conf/experiment/lr.yaml's rates
SEEDS = (0, 1, 2, 3, 4)
EPOCHS = 7  # conf/experiment/overfit.yaml's length
EVAL_EVERY = 0.5  # epochs between validation evaluations: 14 per run
METRICS = ("peak_validation", "drop", "test_win_rate", "final_grammatical", "final_kl")


def command(extra: list[str]) -> list[str]:
    """The study's one multirun."""
    return [
        f"name={NAME}",
        "loss=" + ",".join(LOSSES),
        "trainer.lr=" + ",".join(f"{lr:g}" for lr in LRS),
        f"trainer.epochs={EPOCHS}",
        "trainer.schedule=constant",
        "trainer.warmup=0",
        f"eval.eval_every={EVAL_EVERY}",
        "seed=" + ",".join(str(s) for s in SEEDS),
        "task=" + ",".join(TASKS),
        "launcher=joblib",
        *extra,
    ]


def run_outcomes(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run: task, loss, lr, seed, the validation peak (%, its epoch), the drop
    from the peak to the last evaluation (points), the onset epoch (NaN: none), the test win rate
    at the best validation checkpoint (%), and the last evaluation's grammatical share (%) and KL."""
    from prefopt.analysis.overfitting import evaluation_se, find_overfitting
    from prefopt.analysis.selection import checkpoint_rows

    chosen = checkpoint_rows(rows.assign(run_dir=rows["run_id"]), "best", "win_rate")
    chosen = chosen[chosen["status"] == "finished"].set_index("run_id")
    validation = rows[(rows["split"] == "validation") & rows["win_rate"].notna()]
    outcomes = []
    for run_id, curve in validation.sort_values("step").groupby("run_id"):
        if run_id not in chosen.index:
            continue
        _, peak, onset = find_overfitting(
            curve["epoch"], curve["win_rate"], evaluation_se(curve, "win_rate")
        )
        last, best = curve.iloc[-1], chosen.loc[run_id]
        outcomes.append(
            {
                "task": best["task.name"],
                "loss": best["loss.name"],
                "lr": best["trainer.lr"],
                "seed": best["seed"],
                "peak_validation": 100 * peak,
                "peak_epoch": curve.loc[curve["win_rate"].idxmax(), "epoch"],
                "drop": 100 * (peak - last["win_rate"]),
                "onset_epoch": np.nan if onset is None else onset,
                "test_win_rate": 100 * best["win_rate"],
                "final_grammatical": 100 * last["grammatical"],
                "final_kl": last["kl"],
            }
        )
    return pd.DataFrame(outcomes)


def loss_differences(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per task, lr and metric: DPO's and SFT's means over seeds, DPO - SFT with its Welch 95%
    interval and the exact permutation p over seeds, and the runs with an onset per loss."""
    from prefopt.analysis.seed_tests import permutation_test, welch_interval

    rows = []
    for (task, lr), runs in outcomes.groupby(["task", "lr"]):
        dpo, sft = runs[runs["loss"] == "dpo"], runs[runs["loss"] == "sft"]
        for metric in METRICS:
            interval = welch_interval(dpo[metric], sft[metric])
            p_value, _, _ = permutation_test(dpo[metric], sft[metric])
            rows.append(
                {
                    "task": task,
                    "lr": lr,
                    "metric": metric,
                    "dpo": dpo[metric].mean(),
                    "sft": sft[metric].mean(),
                    "dpo - sft": interval.mean,
                    "low": interval.low,
                    "high": interval.high,
                    "permutation p": p_value,
                    "seeds": f"{len(dpo)}/{len(sft)}",
                    "onsets": f"{int(dpo['onset_epoch'].notna().sum())}/"
                    f"{int(sft['onset_epoch'].notna().sum())}",
                }
            )
    return pd.DataFrame(rows)


def curves_figure(rows: pd.DataFrame, task: str) -> None:
    """figures/curves_<task>.png: a panel per learning rate, DPO's and SFT's validation win rate
    over epochs, the mean over seeds with its 95% band (prompt-level standard error and seed
    variance combined, prefopt.analysis.overfitting.mean_curve)."""
    import matplotlib.pyplot as plt

    from prefopt.analysis import save_figure
    from prefopt.analysis.overfitting import mean_curve
    from prefopt.analysis.style import PAPER_RC, figure_legend, method_colors, panel_grid

    validation = rows[(rows["split"] == "validation") & (rows["task.name"] == task)]
    colors = method_colors(LOSSES)
    with plt.rc_context(PAPER_RC):
        figure, axes = panel_grid(len(LRS), max_columns=len(LRS))
        handles = {}
        for axis, lr in zip(axes, LRS, strict=True):
            for loss in LOSSES:
                runs = validation[
                    (validation["loss.name"] == loss) & (validation["trainer.lr"] == lr)
                ]
                curve = mean_curve(runs, "win_rate", "epoch")
                color = colors[loss]
                (line,) = axis.plot(curve["epoch"], 100 * curve["mean"], color=color, marker="o")
                axis.fill_between(
                    curve["epoch"], 100 * curve["low"], 100 * curve["high"], color=color, alpha=0.2
                )
                handles.setdefault(
                    f"{loss} (mean of {runs['run_id'].nunique()} seeds, 95% band)", line
                )
            axis.axhline(50, color="0.6", linestyle=":", linewidth=0.8)
            axis.set_title(f"{task}, lr {lr:g}")
            axis.set_xlabel("Epoch")
        low = min(axis.get_ylim()[0] for axis in axes)
        high = max(axis.get_ylim()[1] for axis in axes)
        for axis in axes:
            axis.set_ylim(low, high)  # one scale: the rates compare across panels
        axes[0].set_ylabel("Validation win rate vs $\\pi_{\\mathrm{ref}}$ (%)")
        figure_legend(figure, handles)
    save_figure(figure, RESULTS / "figures", f"curves_{task}")


def report() -> Path:
    """results/sft_vs_dpo/: runs.parquet, outcomes.csv, report.md and a figure per task."""
    data = export_study(SWEEP, RESULTS / "runs.parquet")
    rows, _ = read_study(data)
    outcomes = run_outcomes(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    outcomes.to_csv(RESULTS / "outcomes.csv", index=False)
    differences = loss_differences(outcomes)
    lines = [
        "# DPO against SFT: report",
        "",
        f"From {data.name}: {rows['run_id'].nunique()} runs. Win rates in % against pi_ref's "
        "samples; peak and drop on validation (drop: peak minus the last of 14 evaluations); test "
        "at each run's best validation checkpoint; grammatical and KL at the last evaluation. "
        "DPO - SFT: difference of the means over seeds, Welch 95% interval, exact permutation p "
        "(no multiplicity correction over the rows); onsets: runs whose curve fell more than the "
        "noise below its peak, DPO/SFT.",
        "",
    ]
    for task, part in differences.groupby("task", sort=False):
        lines += [f"## {task}", "", *markdown_lines(part.drop(columns="task"))]
        sweep = rows[rows["task.name"] == task]
        sweep.attrs = rows.attrs
        curves_figure(rows, task)
        frame_figure(sweep, RESULTS, f"by_lr_{task}", "trainer.lr", group="loss.name")
        lines += [f"![{task}](figures/curves_{task}.png)", ""]
        lines += [f"![{task}: grammar and KL](figures/by_lr_{task}.png)", ""]
    return write_markdown(RESULTS / "report.md", lines)


def main(argv: list[str] | None = None) -> None:
    run_or_report(
        __doc__.split("\n\n")[0], lambda extra: [command(extra)], report, argv, sweep=SWEEP
    )


if __name__ == "__main__":
    main()
