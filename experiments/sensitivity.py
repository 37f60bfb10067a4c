"""Studies 3 and 4, beta and learning-rate sensitivity. Claims tested: (3) a beta too small lets the
policy drift far from pi_ref (high KL, falling quality), one too large barely moves it; every
evaluation lands on a reward-vs-KL frontier per loss; (4) learning rates above the useful range break
coherence (grammatical fraction falls, KL rises).

    python experiments/sensitivity.py            # results in results/beta/ and results/lr/

Runs conf/experiment/beta/{dpo,ipo}.yaml and conf/experiment/lr.yaml, then one report per study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report, setting_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", nargs="+", default=["beta", "lr"], choices=["beta", "lr"])
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. num_threads=1)"
    )
    args = parser.parse_args()
    if "beta" in args.studies:
        planned_train("experiment=beta/dpo", *args.extra)
        planned_train("experiment=beta/ipo", *args.extra)
        report(Path("multirun/beta"), Path("results/beta"), "--checkpoint", "final")
        setting_figure(Path("multirun/beta"), Path("results/beta"), "loss.beta", group="loss.name")
    if "lr" in args.studies:
        planned_train("experiment=lr", *args.extra)
        report(Path("multirun/lr"), Path("results/lr"), "--checkpoint", "final", "--x", "epoch")
        setting_figure(Path("multirun/lr"), Path("results/lr"), "trainer.lr")


if __name__ == "__main__":
    main()
