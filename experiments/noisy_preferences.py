"""Study 5, noisy preferences. Claim tested: as the label flip rate grows from 0 to 40%, which loss
keeps its win rate best: plain DPO, conservative DPO and robust DPO (both told the true flip rate),
or IPO?

    python experiments/noisy_preferences.py      # results in results/noise/

Runs conf/experiment/noise/{dpo,cdpo,rdpo,ipo}.yaml (each rebuilds the task's data with the flip rate;
pi_ref is rebuilt too, as the task's cache is keyed by its whole config) and one report, one method
per variant (run_label).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report, setting_figure

VARIANTS = ("dpo", "cdpo", "rdpo", "ipo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. num_threads=1)"
    )
    args = parser.parse_args()
    for variant in args.variants:
        planned_train(f"experiment=noise/{variant}", *args.extra)
    report(Path("multirun/noise"), Path("results/noise"), "--method", "run_label")
    setting_figure(
        Path("multirun/noise"), Path("results/noise"), "task.flip_rate", group="run_label"
    )


if __name__ == "__main__":
    main()
