"""Run the tiny DPO training in this process (launched twice by torchrun in the DDP test)."""

import sys
from pathlib import Path

from tiny import make_config

from prefopt.trainer.run import run_training

root, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
cfg = make_config(root, root / "cache", {"name": "dpo", "beta": 0.1}, max_steps=4)
cfg.eval.at_start = False
run_training(cfg, run_dir)
