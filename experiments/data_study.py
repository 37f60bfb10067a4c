"""Study 7, data size and pair quality. Claims tested: (a) more pairs help DPO at a fixed number of
optimiser steps; (b) keeping only pairs with a clear gold-reward gap (fewer, cleaner pairs) helps or
hurts.

    python experiments/data_study.py             # results in results/data/

Runs conf/experiment/data/{size,gap}.yaml and one report, one method per variant (run_label).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report, setting_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. launcher=joblib)"
    )
    args = parser.parse_args()
    planned_train("experiment=data/size", *args.extra)
    planned_train("experiment=data/gap", *args.extra)
    report(Path("multirun/data"), Path("results/data"), "--method", "run_label")
    setting_figure(Path("multirun/data"), Path("results/data"), "task.n_train_pairs", "run_label")
    setting_figure(Path("multirun/data"), Path("results/data"), "task.min_reward_gap", "run_label")


if __name__ == "__main__":
    main()
