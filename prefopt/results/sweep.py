"""Read a sweep's run store into a tidy pandas DataFrame.

A sweep directory holds run directories at any depth; a run directory is one that contains
`summary.json` or `config.yaml` (hidden folders such as Hydra's `.hydra/` are skipped, and runs do
not nest). Each run contributes one row per logged metrics line (train and evaluation rows, told
apart by the `split` column), with its flattened config (`loss.name`, `loss.beta`, `trainer.lr`,
`seed`, ...) as columns. A run with no metrics (crashed before logging, or not started) still
contributes one row with `split` and `step` missing, so that it is never silently dropped.

    from prefopt.results import load_sweep
    frame = load_sweep("multirun/variants", split="validation")
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from prefopt.results.store import MetricsLog, read_json

SPLITS = ("train", "validation", "test")
STATUSES = ("finished", "running", "failed", "interrupted", "incomplete")
RUN_MARKERS = ("summary.json", "config.yaml")
# Columns every frame has, in this order, before the hyperparameters and metrics.
ID_COLUMNS = ("run_id", "status", "split", "step", "epoch")
# Columns every frame has after the metrics.
TAIL_COLUMNS = ("error", "code_version", "overrides", "run_dir")
# A string that YAML 1.1 leaves unparsed although it is a number, such as "1e-4".
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def find_run_dirs(sweep_dir: str | Path) -> list[Path]:
    """Every run directory under `sweep_dir` (itself included), sorted by path."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep directory {str(root)!r} does not exist")
    return sorted(_walk_runs(root))


def _walk_runs(directory: Path) -> Iterator[Path]:
    if any((directory / marker).is_file() for marker in RUN_MARKERS):
        yield directory
        return
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            yield from _walk_runs(child)


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"loss.beta": 0.1, ...}; lists become tuples (hashable columns)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif isinstance(value, list):
            flat[name] = tuple(value)
        elif isinstance(value, str) and _FLOAT_STRING.match(value):
            flat[name] = float(value)
        else:
            flat[name] = value
    return flat


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json, or None if the run has not written one (yet)."""
    path = Path(run_dir) / "summary.json"
    return read_json(path) if path.is_file() else None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The complete rows of metrics.jsonl ([] when absent; a torn last line is ignored)."""
    return MetricsLog(Path(run_dir) / "metrics.jsonl").rows()


def load_samples(run_dir: str | Path, step: int, split: str) -> pd.DataFrame | None:
    """samples/step_<step:07d>_<split>.jsonl as a frame (one row per prompt), None when absent.

    Adds `win`: the judge's `preference` for the policy's response when the file has one, else
    1 if policy_reward > reference_reward, 0.5 on a tie, 0 otherwise.
    """
    _check_splits(split)
    path = Path(run_dir) / "samples" / f"step_{int(step):07d}_{split}.jsonl"
    if not path.is_file():
        return None
    samples = pd.read_json(path, lines=True)
    if samples.empty:
        return None
    if "preference" in samples and samples["preference"].notna().all():
        samples["win"] = samples["preference"].astype(float)
    else:
        policy, reference = samples["policy_reward"], samples["reference_reward"]
        samples["win"] = (policy > reference) + 0.5 * (policy == reference)
    return samples


def load_best_of_n(
    sweep_dir: str | Path, run_dirs: Iterable[str | Path] | None = None
) -> pd.DataFrame:
    """Every best_of_n.json under the sweep (or under ``run_dirs`` only: the runs of one task),
    averaged by N (pi_ref is shared by the runs).

    Columns: n, kl_bound, kl_estimate, judge_reward, win_rate (any may be missing), sorted by n;
    an empty frame when no run wrote one.
    """
    roots = [Path(sweep_dir)] if run_dirs is None else [Path(d) for d in run_dirs]
    paths = sorted({path for root in roots for path in root.rglob("best_of_n.json")})
    tables = [pd.DataFrame(read_json(path)) for path in paths]
    tables = [table for table in tables if not table.empty]
    if not tables:
        return pd.DataFrame(columns=["n", "kl_bound", "kl_estimate", "judge_reward", "win_rate"])
    return pd.concat(tables).groupby("n", as_index=False).mean(numeric_only=True).sort_values("n")


def read_overrides(run_dir: str | Path) -> list[str]:
    """The run's override strings, e.g. ["loss=ipo", "loss.beta=0.3"]; [] when absent."""
    path = Path(run_dir) / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(item) for item in yaml.safe_load(path.read_text()) or []]


def run_status(summary: dict[str, Any] | None) -> str:
    """The summary's status (finished, running, failed, interrupted), or incomplete when there is
    no summary; an unknown status is kept as written, with a warning."""
    if summary is None:
        return "incomplete"
    status = str(summary.get("status"))
    if status not in STATUSES:
        warnings.warn(f"summary status {status!r} is not one of {STATUSES}", stacklevel=2)
    return status


def load_run(
    run_dir: str | Path, split: str | Iterable[str] | None = None, root: str | Path | None = None
) -> pd.DataFrame:
    """One run's rows: metrics lines (filtered to `split`) joined with its flattened config.

    `run_id` is the run's path relative to `root` (default: the run directory's parent).
    """
    frame, config_keys = _read_run(Path(run_dir), _check_splits(split), root)
    return _order_columns(frame, config_keys)


def load_sweep(path: str | Path, split: str | Iterable[str] | None = None) -> pd.DataFrame:
    """One row per run and logged step of every run under `path`; see the module docstring.

    `split`: None for all rows, or one of / a list of "train", "validation", "test". A run with no
    row of the requested split still has one row (split missing) carrying its status.
    """
    root = Path(path)
    splits = _check_splits(split)
    runs = [_read_run(run_dir, splits, root) for run_dir in find_run_dirs(root)]
    if not runs:
        return _order_columns(pd.DataFrame(), [])
    frame = pd.concat([run_frame for run_frame, _ in runs], ignore_index=True, sort=False)
    config_keys = list(dict.fromkeys(key for _, keys in runs for key in keys))
    return _order_columns(frame, config_keys)


def _read_run(
    run_dir: Path, splits: set[str] | None, root: str | Path | None
) -> tuple[pd.DataFrame, list[str]]:
    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else None
    flat_config = flatten_config(config or {})
    summary = read_summary(run_dir)
    run_info = {
        "run_id": run_dir.relative_to(root or run_dir.parent).as_posix() or ".",
        "status": run_status(summary),
        "error": (summary or {}).get("error"),
        "code_version": (summary or {}).get("code_version"),  # prefopt that finished the run
        "overrides": " ".join(read_overrides(run_dir)),
        "run_dir": str(run_dir),
        **flat_config,
    }
    rows = [row for row in read_metrics(run_dir) if splits is None or row.get("split") in splits]
    if not rows:
        rows = [{"split": None, "step": None, "epoch": None}]
    return pd.DataFrame([{**row, **run_info} for row in rows]), list(flat_config)


def _order_columns(frame: pd.DataFrame, config_keys: list[str]) -> pd.DataFrame:
    """run_id, status, split, step, epoch, config..., metrics..., error, code_version, overrides,
    run_dir."""
    for column in (*ID_COLUMNS, *TAIL_COLUMNS):
        if column not in frame.columns:
            frame[column] = None
    reserved = {*ID_COLUMNS, *TAIL_COLUMNS}
    config_keys = [key for key in config_keys if key not in reserved]
    metrics = [c for c in frame.columns if c not in reserved and c not in config_keys]
    frame = frame[[*ID_COLUMNS, *config_keys, *metrics, *TAIL_COLUMNS]].copy()
    for column in ("step", "epoch", *metrics):
        frame[column] = _numeric_if_possible(frame[column])
    frame.attrs["config_columns"] = config_keys
    frame.attrs["metric_columns"] = metrics
    return frame


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    """Numbers stay numbers when some rows lack the value (JSON null, NaN written as null)."""
    if column.dtype != object:
        return column
    try:
        return pd.to_numeric(column)
    except (TypeError, ValueError):
        return column


def _check_splits(split: str | Iterable[str] | None) -> set[str] | None:
    if split is None:
        return None
    splits = {split} if isinstance(split, str) else set(split)
    unknown = splits - set(SPLITS)
    if unknown:
        raise ValueError(f"split {sorted(unknown)} is not one of {SPLITS}")
    return splits


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a frame from `load_sweep`.

    Read from `frame.attrs` when pandas kept them; otherwise the non-identifying columns whose value
    is constant within every run (metrics change from row to row, a config does not).
    """
    if "config_columns" in frame.attrs:
        return [c for c in frame.attrs["config_columns"] if c in frame.columns]
    reserved = {*ID_COLUMNS, *TAIL_COLUMNS}
    candidates = [c for c in frame.columns if c not in reserved]
    per_run = frame.groupby("run_id", dropna=False)[candidates].nunique(dropna=False)
    return [c for c in candidates if (per_run[c] <= 1).all()]
