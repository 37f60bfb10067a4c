"""Shared steps of the study drivers: run Hydra multiruns of prefopt.train, then the report."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ESTIMATED_RUN_SECONDS = 300.0  # stated time per run when a study has no finished run to measure
PARALLEL_JOBS = 2  # runs at a time under launcher=joblib (conf/launcher/joblib.yaml's n_jobs)


CONF = Path(__file__).resolve().parents[1] / "conf"  # the project's Hydra configs


def train(*overrides: str) -> None:
    """One Hydra multirun of prefopt.train (finished runs are skipped, interrupted ones resume)."""
    subprocess.run([sys.executable, "-m", "prefopt.train", "-m", *overrides], check=True)


def sweep_plan(overrides: list[str]) -> tuple[int, Path]:
    """(runs, sweep directory) of the multirun ``overrides`` describe, counted as Hydra's basic
    sweeper expands it: its experiment's `hydra.sweeper.params`, then the command line, the last
    value of a key winning (a single value replaces an experiment's list)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=fixed, return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]
    last = {o.get_key_element(): o for o in parser.parse_overrides([*params, *overrides])}
    runs = 1
    for override in last.values():
        if override.is_sweep_override():
            runs *= len(list(override.sweep_iterator()))
    return runs, Path(cfg.hydra.sweep.dir)


def planned_train(*overrides: str) -> None:
    """``train``, after printing the multirun's runs times the time per run measured on its
    sweep's finished runs."""
    runs, sweep = sweep_plan(list(overrides))
    print_cost(f"python -m prefopt.train -m {' '.join(overrides)}", runs, sweep)
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


def print_cost(label: str, runs: int, root: Path) -> None:
    """`<label>: <runs> runs x <s> s per run (its source) = <h> h of runs, <h/2> h at 2 at a time`;
    the time per run is measured on ``root``'s finished runs where it has any."""
    seconds, source = measured_run_seconds(root)
    hours = runs * seconds / 3600
    print(
        f"{label}: {runs} runs x {seconds:.0f} s per run ({source}) = {hours:.2f} h of runs, "
        f"{hours / PARALLEL_JOBS:.2f} h at {PARALLEL_JOBS} at a time"
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
    runs = sum(count_runs(c) for c in planned)
    print(f"{len(planned)} multiruns, {runs} runs")
    print_cost("study", runs, sweep)
    for overrides in planned:
        print("  python -m prefopt.train -m " + " ".join(overrides))
        if not args.dry_run:
            train(*overrides)


def count_runs(overrides: list[str]) -> int:
    """Runs of one multirun: the product of the comma-separated values of its sweep overrides."""
    runs = 1
    for override in overrides:
        key, _, value = override.partition("=")
        if not key.startswith("hydra.") and "[" not in value:
            runs *= len(value.split(","))
    return runs


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
