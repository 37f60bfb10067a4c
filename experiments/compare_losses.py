"""Study 1, variant comparison. Claim tested: with each loss tuned on validation over its own grid,
which of DPO, IPO, KTO, ORPO and SimPO gives the highest held-out gold win rate against pi_ref on the
built-in task, and by how much (the papers report SimPO > DPO > KTO ~ IPO ~ ORPO on AlpacaEval)?

    python experiments/compare_losses.py            # results in results/compare/

Phase 1: every loss's grid (conf/experiment/compare/<loss>.yaml, beta x learning rate) with seed 0,
selected on the validation win rate at each run's best checkpoint. Phase 2: each loss's selected
setting again with seeds 1 and 2. Then the report (test-split table, mean and 95% CI over seeds and
prompts, tests paired by prompt against DPO) is written to multirun/compare and copied to
results/compare/. Runs that finished are skipped, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report

from prefopt.analysis.selection import checkpoint_rows, select_hyperparameters
from prefopt.results import load_sweep

LOSSES = ("dpo", "ipo", "kto", "orpo", "simpo")
SWEEP = Path("multirun/compare")


def selected_settings() -> dict[str, dict[str, float]]:
    """Each loss's best (loss.beta, trainer.lr) on validation, from the seed-0 grid."""
    frame = load_sweep(SWEEP)
    frame = frame[frame["seed"] == 0]
    best = select_hyperparameters(checkpoint_rows(frame, "best", "win_rate"))
    return {
        row["loss.name"]: {"loss.beta": row["loss.beta"], "trainer.lr": row["trainer.lr"]}
        for _, row in best.iterrows()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--seeds", default="1,2", help="extra seeds of the selected settings")
    parser.add_argument("--out", type=Path, default=Path("results/compare"))
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. num_threads=1)"
    )
    args = parser.parse_args()
    for loss in args.losses:
        planned_train(f"experiment=compare/{loss}", *args.extra)
    for loss, setting in selected_settings().items():
        print(f"{loss}: selected {setting} on validation")
        values = [f"{key}={value:g}" for key, value in setting.items()]
        planned_train(f"experiment=compare/{loss}", *values, f"seed={args.seeds}", *args.extra)
    report(SWEEP, args.out)


if __name__ == "__main__":
    main()
