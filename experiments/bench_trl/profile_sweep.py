"""Where the sweep's time goes per run: prefopt's sweep (bench.py's) under cProfile, by phase.

    python experiments/bench_trl/profile_sweep.py --steps 6 --threads 1 --out results/performance

A phase: the cumulative time of the prefopt function doing it, per run; "other": the rest of
``run_training``. cProfile inflates Python-heavy phases: the shares say where to look.
"""

from __future__ import annotations

import cProfile
import pstats

import torch
from bench import CONFIGS, SWEEP_GRID, fresh_run_dir, parse_args, run_sweep
from report import table, write
from workload import Workload, prepared

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
TOTAL = ("prefopt/trainer/run.py", "run_training")  # a run's whole time
COLUMNS = {  # the table: phase -> its cells
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
    """Profile the sweep; write sweep_profile.json and .md."""
    args = parse_args(__doc__, ["--steps", "--threads", "--out"], steps=6, threads=1)
    torch.set_num_threads(args.threads)
    work, runs = Workload(steps=args.steps), len(SWEEP_GRID)
    with prepared(work) as workdir, cProfile.Profile() as profiler:
        run_sweep(
            CONFIGS["prefopt_cached"], work, workdir, fresh_run_dir(workdir, "prefopt_cached_")
        )
    stats = pstats.Stats(profiler)
    total = cumulative(stats, TOTAL) / runs
    phases = {phase: cumulative(stats, where) / runs for phase, where in PHASES.items()}
    phases["other"] = total - sum(phases.values())
    rows = {p: {"seconds": s, "share": s / total} for p, s in phases.items()}
    rows["run_training (all)"] = {"seconds": total, "share": 1.0}
    write(args, work, "sweep_profile", {"runs": runs, "phases": rows}, [
        f"{runs} runs of {args.steps} steps, prefopt_cached, under cProfile.", table(COLUMNS, rows)
    ])  # fmt: skip


if __name__ == "__main__":
    main()
