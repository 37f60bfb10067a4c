"""Train one preference-optimisation run, or a sweep with ``-m``.

    python -m prefopt.train                                   # DPO on the built-in task
    python -m prefopt.train loss=ipo loss.beta=0.3 trainer.lr=1e-3 trainer.epochs=3 seed=1
    python -m prefopt.train -m loss=dpo,ipo trainer.lr=1e-4,5e-4 seed=0,1,2

The run directory derives from the command's overrides (:func:`run_name`), so running the same
command again resumes the run (or says it has finished). An error the user can fix prints one message
(``debug=true`` adds the traceback) and exits with status 2; SIGTERM or Ctrl-C stops a run at the next
step boundary with a checkpoint (status 128 + the signal); a sweep with a failed run exits with 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from prefopt.console import setup_console
from prefopt.errors import UserError
from prefopt.results.identity import RESULT_NEUTRAL_KEYS
from prefopt.results.sweep_outcome import record_failed_run
from prefopt.trainer.interrupt import RunInterrupted
from prefopt.trainer.run import run_training

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
# Overrides left out of run names: those that do not change the result, and `experiment`, which
# picks the sweep directory (its settings are part of the config itself).
NAME_EXCLUDED_KEYS = (*RESULT_NEUTRAL_KEYS, "experiment")
MAX_RUN_NAME = 160  # characters of a run directory's name (a path component may have 255)
NAME_HASH_LENGTH = 10  # hex digits of the override list's hash in a cut or cleaned name
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9=,._+@:-]+")
EXIT_USER_ERROR = 2


def _override_key(override: str) -> str:
    """The top-level config key an override sets (``+trainer.lr=1`` -> ``trainer``)."""
    return override.lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0]


def run_name(overrides: Sequence[str]) -> str:
    """Directory name of a run: its overrides, sorted and joined by ``,`` ("default" for none).

    Keys that do not change the result (logger, device, launcher, ...) are left out. A name that
    would hold characters unsafe in a path (``/``, spaces, brackets) or exceed MAX_RUN_NAME is
    cleaned, cut and ends in ``~`` plus a hash of the full override list, so different runs never
    share a directory (``~`` never occurs in a name kept as it is).
    """
    kept = sorted(o for o in overrides if _override_key(o) not in NAME_EXCLUDED_KEYS)
    readable = ",".join(kept) or "default"
    if len(readable) <= MAX_RUN_NAME and not UNSAFE_IN_NAME.search(readable):
        return readable
    digest = hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:NAME_HASH_LENGTH]
    cleaned = UNSAFE_IN_NAME.sub("_", readable)[: MAX_RUN_NAME - NAME_HASH_LENGTH - 1]
    return f"{cleaned}~{digest}"


if not OmegaConf.has_resolver("prefopt_run_name"):
    OmegaConf.register_new_resolver("prefopt_run_name", lambda overrides: run_name(list(overrides)))


def headline(summary: dict, run_dir: str) -> str:
    """One line at the end of a run: its status, directory and headline numbers."""
    parts = [f"{summary.get('status', 'unknown')}: {run_dir}"]
    if "steps" in summary:
        parts.append(f"{summary['steps']} steps")
    best = summary.get("best") or {}
    for split in ("validation", "test"):
        row = best.get(split) or {}
        for metric in ("win_rate", "reward_accuracy"):
            if row.get(metric) is not None:
                low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
                interval = (
                    f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
                )
                parts.append(f"{split} {metric} {row[metric]:.3f}{interval}")
                break
    if best.get("step") is not None:
        parts.append(f"best checkpoint: step {best['step']}")
    return " | ".join(parts)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best validation selection metric (for sweepers)."""
    setup_console()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        summary = run_training(cfg, run_dir, list(hydra_cfg.overrides.task))
    except RunInterrupted as stop:
        print(f"interrupted: {run_dir}: {stop}; run the same command again to resume")
        if multirun:
            raise
        sys.exit(128 + stop.signum)
    except Exception as error:
        if multirun:  # one failed run (marked failed in its summary.json) must not stop the others
            logging.getLogger(__name__).error("run %s failed: %s", run_dir, error)
            record_failed_run(hydra_cfg.sweep.dir, run_dir, error)
            return None
        if isinstance(error, UserError) and not cfg.debug:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        raise
    print(headline(summary, run_dir))
    best = summary.get("best", {}).get("validation", {})
    return best.get("win_rate", best.get("reward_accuracy"))


if __name__ == "__main__":
    main()
