"""Where the sweep's time goes per run: prefopt's 15-run sweep under cProfile, by phase.

    python experiments/bench_trl/profile_sweep.py --steps 6 --threads 1 --out results/performance

bench.py's sweep (SWEEP_LOSSES x SWEEP_BETAS, prefopt with the shared reference cache) run in this
process under cProfile. Each phase is the cumulative time of the prefopt function that does it,
summed over the runs and divided by their number; "other" is the rest of ``run_training`` (locks,
config files, summaries). cProfile's own overhead inflates Python-heavy phases, so the shares say
where to look, not how fast a phase is without the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from pathlib import Path

import torch
from bench import CONFIGS, SWEEP_BETAS, SWEEP_LOSSES, fresh_run_dir, run_one, table, write
from workload import Workload, prepare

PHASES = {  # phase -> (module file suffix, function name) whose cumulative time it is
    "config check": ("prefopt/trainer/setup.py", "check_config"),
    "task": ("prefopt/trainer/setup.py", "resolve_task"),
    "data (read, tokenize, items)": ("prefopt/trainer/data_setup.py", "prepare_data"),
    "models and reference log-probs": ("prefopt/trainer/model_setup.py", "prepare_models"),
    "evaluation setup": ("prefopt/trainer/model_setup.py", "generation_hook"),
    "training parts": ("prefopt/trainer/build.py", "training_parts"),
    "training steps": ("prefopt/trainer/loop.py", "train_step"),
    "evaluation": ("prefopt/trainer/loop.py", "evaluate"),
    "checkpoints": ("prefopt/trainer/loop.py", "_checkpoint"),
}
TOTAL = ("prefopt/trainer/run.py", "run_training")
COLUMNS = {
    "phase": None,
    "seconds per run": lambda p: f"{p['seconds']:.2f}",
    "share": lambda p: f"{p['share']:.1%}",
}


def cumulative(stats: pstats.Stats, where: tuple[str, str]) -> float:
    """Cumulative seconds of the function ``where`` names (0 where it never ran)."""
    suffix, name = where
    return sum(
        entry[3]
        for (path, _, function), entry in stats.stats.items()
        if function == name and path.endswith(suffix)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/performance")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Workload(steps=args.steps)
    grid = [(loss, beta) for loss in SWEEP_LOSSES for beta in SWEEP_BETAS]
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        run_dir = fresh_run_dir(Path(tmp), "prefopt_cached_")
        profiler = cProfile.Profile()
        profiler.enable()
        for name, beta in grid:
            run_one(
                CONFIGS["prefopt_cached"], work, Path(tmp), run_dir / f"{name}_{beta}", (name, beta)
            )
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = cumulative(stats, TOTAL) / len(grid)
    phases = {phase: cumulative(stats, where) / len(grid) for phase, where in PHASES.items()}
    phases["other"] = total - sum(phases.values())
    rows = {p: {"seconds": s, "share": s / total} for p, s in phases.items()}
    rows["run_training (all)"] = {"seconds": total, "share": 1.0}
    lines = [f"{len(grid)} runs of {args.steps} steps, prefopt_cached, under cProfile.", ""]
    write(
        args,
        work,
        "sweep_profile",
        {"runs": len(grid), "phases": rows},
        [*lines, *table(COLUMNS, rows)],
    )


if __name__ == "__main__":
    main()
