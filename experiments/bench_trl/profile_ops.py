"""Where each tool's time goes: torch.profiler operator totals over the same short run.

    python experiments/bench_trl/profile_ops.py --steps 4 --threads 1 --top 12 --out results/performance

Per throughput configuration (bench.py), setup included: the operators with the most self CPU time
and their share of the total; they say which operators differ, not how fast either tool is.
"""

from __future__ import annotations

import torch
from bench import CONFIGS, RATIOS, configurations, fresh_run_dir, parse_args, run_one
from report import table, write
from torch.profiler import ProfilerActivity, profile
from workload import Workload, prepared

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
    """Profile each throughput configuration; write profile_ops.json and .md."""
    args = parse_args(__doc__, ["--steps", "--threads", "--top", "--out"], steps=4, threads=1)
    torch.set_num_threads(args.threads)
    work, report, blocks = Workload(steps=args.steps), {}, []
    with prepared(work) as workdir:
        for name in configurations(RATIOS["throughput"]):
            run_dir = fresh_run_dir(workdir, f"{name}_")
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run_one(CONFIGS[name], work, workdir, run_dir)
            report[name] = top_ops(prof, args.top)
            blocks += [f"### {name}", table(COLUMNS, {o["op"]: o for o in report[name]})]
    write(args, work, "profile_ops", {"ops": report}, blocks)


if __name__ == "__main__":
    main()
