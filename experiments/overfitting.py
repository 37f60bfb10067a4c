"""Study 2, the overfitting curve. Claim tested: at a fixed small learning rate, DPO's training loss
keeps falling for 7 epochs while the held-out gold win rate peaks and then drops; when does each loss
turn, and does IPO resist (as its paper argues)?

    python experiments/overfitting.py            # results in results/overfit/

Runs conf/experiment/overfit.yaml (5 losses x 2 seeds, lr 1e-4 constant, evaluation twice per
epoch) and writes the report with the overfitting curves (peak and onset of a 10-point drop marked).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/overfit"))
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. num_threads=1)"
    )
    args = parser.parse_args()
    planned_train("experiment=overfit", *args.extra)
    report(Path("multirun/overfit"), args.out, "--checkpoint", "final", "--x", "epoch")


if __name__ == "__main__":
    main()
