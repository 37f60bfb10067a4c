"""Shared steps of the study drivers: run Hydra multiruns of prefopt.train, then the report."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def train(*overrides: str) -> None:
    """One Hydra multirun of prefopt.train (finished runs are skipped, interrupted ones resume)."""
    subprocess.run([sys.executable, "-m", "prefopt.train", "-m", *overrides], check=True)


def run_or_report(
    description: str,
    commands: Callable[[list[str]], list[list[str]]],
    report: Callable[[], object],
    argv: list[str] | None = None,
) -> None:
    """A study driver's command line: `run [--dry-run] [overrides...]` prints, then launches, each
    multirun of ``commands(overrides)``; `report` calls ``report()``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("phase", choices=("run", "report"))
    parser.add_argument("--dry-run", action="store_true", help="print the multiruns only")
    parser.add_argument("extra", nargs="*", help="more overrides for every run")
    args = parser.parse_intermixed_args(argv)
    if args.phase == "report":
        report()
        return
    planned = commands(args.extra)
    print(f"{len(planned)} multiruns, {sum(count_runs(c) for c in planned)} runs")
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
