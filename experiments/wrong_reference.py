"""Study 6, wrong reference. Claim tested: DPO assumes pi_ref is the model pi starts from; when pi
starts from another model (here pi_ref fine-tuned on the chosen responses, "SFT") but the loss still
uses the original pi_ref, the implicit reward starts with a non-zero margin and training moves the
policy differently than with the matching reference.

    python experiments/wrong_reference.py        # results in results/wrong_ref/

Stage 1 trains the SFT start (loss=sft, 1 epoch). Stage 2 trains DPO three ways, all judged against
the task's pi_ref (eval.baseline_name_or_path=@task): from pi_ref with pi_ref (standard), from SFT
with pi_ref (wrong reference), from SFT with SFT (matching reference).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from study import planned_train, report

SWEEP = Path("multirun/wrong_ref")
START = SWEEP / "sft_start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extra", nargs="*", help="more overrides for every run")
    args = parser.parse_args()
    sft = ["name=wrong_ref", "loss=sft", "trainer.epochs=1", f"hydra.run.dir={START}"]
    subprocess.run([sys.executable, "-m", "prefopt.train", *sft, *args.extra], check=True)
    start = START / "policy"
    common = ["name=wrong_ref", "loss=dpo", "eval.baseline_name_or_path=@task", *args.extra]
    planned_train(*common, "run_label=standard")
    planned_train(
        *common,
        "run_label=wrong_reference",
        f"model.name_or_path={start}",
        "model.reference_name_or_path=@task",
    )
    planned_train(*common, "run_label=matching_reference", f"model.name_or_path={start}")
    report(SWEEP, Path("results/wrong_ref"), "--method", "run_label", "--baseline", "standard")


if __name__ == "__main__":
    main()
