"""Study 8, proxy against gold. Claim tested: a reward model trained on the preference data (the
proxy) keeps scoring the policy higher while the exact gold reward falls, once the policy has moved
far enough from pi_ref (over-optimisation, Gao et al. 2210.10760; Rafailov et al. 2406.02900).

    python experiments/proxy_vs_gold.py          # results in results/proxy/

Runs conf/experiment/proxy.yaml (DPO, IPO, KTO at lr 1e-3 for 5 epochs, proxy scored at every
evaluation) and the report with the proxy-vs-gold figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from study import planned_train, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "extra", nargs="*", help="more overrides for every run (e.g. launcher=joblib)"
    )
    args = parser.parse_args()
    planned_train("experiment=proxy", *args.extra)
    report(Path("multirun/proxy"), Path("results/proxy"), "--checkpoint", "final", "--x", "epoch")


if __name__ == "__main__":
    main()
