"""Shared steps of the study drivers: run Hydra multiruns of prefopt.train, then the report."""

from __future__ import annotations

import argparse
import glob
import itertools
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ESTIMATED_RUN_SECONDS = 300.0  # stated time per run when a study has no finished run to measure
PARALLEL_JOBS = 2  # runs at a time under launcher=joblib (conf/launcher/joblib.yaml's n_jobs)


CONF = Path(__file__).resolve().parents[1] / "conf"  # the project's Hydra configs


def train(*overrides: str) -> None:
    """One Hydra multirun of prefopt.train (finished runs are skipped, interrupted ones resume)."""
    subprocess.run([sys.executable, "-m", "prefopt.train", "-m", *overrides], check=True)


@dataclass(frozen=True)
class SweepPlan:
    """A multirun's sweep directory and the directory name of each run it expands to."""

    sweep: Path
    run_names: tuple[str, ...]

    @property
    def runs(self) -> int:
        """How many runs the multirun expands to."""
        return len(self.run_names)

    def finished(self) -> int:
        """Planned runs already finished in the sweep directory (under any run label)."""
        from prefopt.results.sweep import read_summary

        return sum(
            any(
                (read_summary(run_dir) or {}).get("status") == "finished"
                for run_dir in self.sweep.glob(f"*/{glob.escape(name)}")
            )
            for name in self.run_names
        )


def sweep_plan(overrides: list[str]) -> SweepPlan:
    """The runs ``overrides`` describe, expanded as Hydra's basic sweeper expands them: its
    experiment's `hydra.sweeper.params`, then the command line, the last value of a key winning
    (a single value replaces an experiment's list); each run named as prefopt.train names it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from prefopt.train import run_name

    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=fixed, return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]
    last = {o.get_key_element(): o for o in parser.parse_overrides([*params, *overrides])}
    choices = [
        [f"{key}={value}" for value in override.sweep_string_iterator()]
        if override.is_sweep_override()
        else [f"{key}={override.get_value_element_as_str()}"]
        for key, override in last.items()
        if not override.is_hydra_override()
    ]
    names = tuple(run_name(list(job)) for job in itertools.product(*choices))
    return SweepPlan(Path(cfg.hydra.sweep.dir), names)


def planned_train(*overrides: str) -> None:
    """``train``, after printing the multirun's runs, how many are finished, and the runs left
    times the time per run measured on its sweep's finished runs."""
    plan = sweep_plan(list(overrides))
    label = f"python -m prefopt.train -m {' '.join(overrides)}"
    print_cost(label, plan.runs, plan.finished(), plan.sweep)
    train(*overrides)


def measured_run_seconds(root: Path) -> tuple[float, str]:
    """The median train + eval seconds of the finished runs under ``root`` (where it exists),
    or the stated estimate; with the source of the number."""
    from prefopt.results.sweep import find_run_dirs, read_summary

    seconds = []
    for run_dir in find_run_dirs(root) if root.is_dir() else []:
        summary = read_summary(run_dir) or {}
        if summary.get("status") == "finished" and "train_seconds" in summary:
            seconds.append(summary["train_seconds"] + summary.get("eval_seconds", 0.0))
    if seconds:
        return statistics.median(seconds), f"median of {len(seconds)} finished runs"
    return ESTIMATED_RUN_SECONDS, "stated estimate, no finished run yet"


def print_cost(label: str, runs: int, finished: int, root: Path) -> None:
    """`<label>: <runs> runs (<finished> finished, <left> to run) x <s> s per run (its source)
    = <h> h of runs left, <h/2> h at 2 at a time`; the time per run is measured on ``root``'s
    finished runs where it has any."""
    seconds, source = measured_run_seconds(root)
    left = runs - finished
    hours = left * seconds / 3600
    print(
        f"{label}: {runs} runs ({finished} finished, {left} to run) x {seconds:.0f} s per run "
        f"({source}) = {hours:.2f} h of runs left, {hours / PARALLEL_JOBS:.2f} h at "
        f"{PARALLEL_JOBS} at a time"
    )


def run_or_report(
    description: str,
    commands: Callable[[list[str]], list[list[str]]],
    report: Callable[[], object],
    argv: list[str] | None,
    sweep: Path,
) -> None:
    """A study driver's command line: `run [--dry-run] [overrides...]` prints the runs times the
    time per run measured on ``sweep``'s finished runs, then launches each multirun of
    ``commands(overrides)``; `report` calls ``report()``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("phase", choices=("run", "report"))
    parser.add_argument("--dry-run", action="store_true", help="print the multiruns only")
    parser.add_argument("extra", nargs="*", help="more overrides for every run")
    args = parser.parse_intermixed_args(argv)
    if args.phase == "report":
        report()
        return
    planned = commands(args.extra)
    plans = [sweep_plan(overrides) for overrides in planned]
    runs = sum(plan.runs for plan in plans)
    print(f"{len(planned)} multiruns, {runs} runs")
    print_cost("study", runs, sum(plan.finished() for plan in plans), sweep)
    for overrides in planned:
        print("  python -m prefopt.train -m " + " ".join(overrides))
        if not args.dry_run:
            train(*overrides)


def setting_figure(sweep: Path, out: Path, setting: str, group: str | None = None) -> None:
    """Win rate, grammatical fraction and KL over training, a line per value of ``setting``."""
    from prefopt.results import load_sweep

    frame_figure(load_sweep(sweep), out, f"by_{setting.rsplit('.', 1)[-1]}", setting, group)


def frame_figure(rows, out: Path, name: str, setting: str, group: str | None = None) -> None:
    """out/figures/<name>.png: the rows' win rate, grammatical fraction and KL over training, a
    line per value of ``setting`` (a line style per value of ``group``)."""
    from prefopt.analysis import plot_setting_curves, save_figure

    save_figure(plot_setting_curves(rows, setting, group=group), out / "figures", name)


def report(sweep: Path, out: Path, *options: str) -> None:
    """Write the sweep's report (prefopt.report) and copy it with its figures to ``out``."""
    subprocess.run([sys.executable, "-m", "prefopt.report", str(sweep), *options], check=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "table.tex"):
        if (sweep / name).exists():
            shutil.copy(sweep / name, out / name)
    if (sweep / "figures").exists():
        shutil.copytree(sweep / "figures", out / "figures", dirs_exist_ok=True)
