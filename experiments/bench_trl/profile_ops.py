"""Where each tool's time goes: torch.profiler operator totals over the same short run.

    python experiments/bench_trl/profile_ops.py --steps 4 --threads 1 --out results/performance

bench.py's throughput configurations on the CPU workload under torch.profiler: per configuration,
the operators with the most self CPU time and their share of the total (profile_ops.json, .md).
Setup is profiled too; the tables say which operators differ, not how fast either tool is.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from bench import CONFIGS, RATIOS, configurations, fresh_run_dir, run_one, table, write
from torch.profiler import ProfilerActivity, profile
from workload import Workload, prepare

COLUMNS = {  # the table of each configuration: op -> its cells
    "op": None,
    "calls": lambda o: str(o["calls"]),
    "self CPU ms": lambda o: f"{o['self_cpu_ms']:.0f}",
    "share": lambda o: f"{o['share']:.1%}",
}


def top_ops(prof, limit: int) -> list[dict]:
    """The ``limit`` operators with the largest self CPU time, with their share of the total."""
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:limit]
    return [
        {"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1000,
         "share": e.self_cpu_time_total / total}
        for e in ranked
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", default="results/performance")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work, report, lines = Workload(steps=args.steps), {}, []
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        for name in configurations(RATIOS["throughput"]):
            run_dir = fresh_run_dir(Path(tmp), f"{name}_")
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run_one(CONFIGS[name], work, Path(tmp), run_dir)
            report[name] = top_ops(prof, args.top)
            lines += ["", f"### {name}", "", *table(COLUMNS, {o["op"]: o for o in report[name]})]
    write(args, work, "profile_ops", {"ops": report}, lines[1:])


if __name__ == "__main__":
    main()
