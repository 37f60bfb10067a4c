"""A tiny DPO run with frequent evaluations and checkpoints (killed and resumed by a test)."""

import sys
from pathlib import Path

from tiny import make_config

from prefopt.trainer.run import run_training

root, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
cfg = make_config(root, run_dir.parent / "cache", {"name": "dpo", "beta": 0.1}, epochs=4)
cfg.eval.eval_every = 2
run_training(cfg, run_dir)
