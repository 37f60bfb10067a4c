"""Claim: a run killed with SIGKILL at any moment resumes and ends with exactly the metrics of an
uninterrupted run (CPU, same seed).

    python experiments/reliability/kill_resume.py --kills 20 --out results/reliability

Runs the built-in tiny task once straight through, then ``--kills`` times: start the same run in a
fresh directory, SIGKILL it after a random delay (training, evaluation or a checkpoint write, wherever
it is), start it again with the same command until it finishes, and compare metrics.jsonl and the
summary's metrics with the straight run. Writes kill_resume.json and kill_resume.md to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OVERRIDES = [
    "task=reviews_tiny",
    "trainer.epochs=6",
    "trainer.batch_size=16",
    "eval.eval_every=0.5",
]
COMPARED = ("final", "best", "steps", "tokens_seen")


def train_command(run_dir: Path) -> list[str]:
    """The prefopt.train command for one run in ``run_dir``."""
    return [sys.executable, "-m", "prefopt.train", *OVERRIDES, f"hydra.run.dir={run_dir}"]


def run_to_end(run_dir: Path, env: dict) -> None:
    """Run (or resume) until summary.json says finished."""
    subprocess.run(train_command(run_dir), env=env, check=True, capture_output=True, timeout=1200)


def metrics_of(run_dir: Path) -> tuple[list[dict], dict]:
    """metrics.jsonl rows without timings, and the summary's deterministic parts."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    strip = lambda row: {k: v for k, v in row.items() if not k.endswith("_seconds")}  # noqa: E731
    summary = json.loads((run_dir / "summary.json").read_text())
    kept = {key: summary[key] for key in COMPARED}
    for key in ("final", "best"):
        kept[key] = {
            split: strip(row) if isinstance(row, dict) else row for split, row in kept[key].items()
        }
    return [strip(r) for r in rows], kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="number of killed-and-resumed runs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill delays")
    parser.add_argument("--out", type=Path, default=Path("results/reliability"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prefopt-kill-"))
    env = {**os.environ, "PREFOPT_CACHE": str(work / "cache")}
    run_to_end(work / "warm_up", env)  # builds the task into the cache, so runs below all reuse it
    start = time.perf_counter()
    run_to_end(work / "straight", env)
    straight_seconds = time.perf_counter() - start
    reference = metrics_of(work / "straight")
    rng = random.Random(args.seed)
    trials = []
    for trial in range(args.kills):
        run_dir = work / f"killed_{trial:02d}"
        delay = rng.uniform(0.3 * straight_seconds, straight_seconds)  # past start-up, mostly
        process = subprocess.Popen(
            train_command(run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        was_running = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        status_after_kill = None
        if (run_dir / "summary.json").exists():
            status_after_kill = json.loads((run_dir / "summary.json").read_text()).get("status")
        checkpoints = (
            sorted(p.name for p in (run_dir / "checkpoints").glob("step_*"))
            if (run_dir / "checkpoints").exists()
            else []
        )
        run_to_end(run_dir, env)
        exact = metrics_of(run_dir) == reference
        trials.append(
            {
                "trial": trial,
                "kill_after_seconds": round(delay, 2),
                "killed_while_running": was_running,
                "status_after_kill": status_after_kill,
                "checkpoints_after_kill": checkpoints,
                "resumed_exactly": exact,
            }
        )
        print(json.dumps(trials[-1]), flush=True)
    exact = sum(t["resumed_exactly"] for t in trials)
    result = {
        "command": " ".join(["python", "-m", "prefopt.train", *OVERRIDES]),
        "straight_run_seconds": round(straight_seconds, 1),
        "kills": args.kills,
        "resumed_exactly": exact,
        "trials": trials,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kill_resume.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Kill and resume",
        "",
        f"`{result['command']}`, killed with SIGKILL after a random delay, then started again.",
        f"Straight run: {result['straight_run_seconds']} s. "
        f"Resumed exactly (metrics.jsonl and summary equal to the straight run): {exact}/{args.kills}.",
        "",
        "| trial | killed after (s) | was running | status after kill | checkpoints | exact |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        lines.append(
            f"| {t['trial']} | {t['kill_after_seconds']} | {t['killed_while_running']} | "
            f"{t['status_after_kill']} | {', '.join(t['checkpoints_after_kill']) or '-'} | "
            f"{t['resumed_exactly']} |"
        )
    (args.out / "kill_resume.md").write_text("\n".join(lines) + "\n")
    print(f"resumed exactly: {exact}/{args.kills}")


if __name__ == "__main__":
    main()
