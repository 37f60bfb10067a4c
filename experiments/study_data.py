"""A study's compact data in one Parquet file, and its report rebuilt from that file alone.

The file holds three kinds of records (column `record`): "row", every logged metrics row of every
run with its flattened config, overrides, status and `phase` (pilot, trials, confirm); "prompt",
the per-prompt scores (win, rewards, length) of the test split at each run's checkpoint chosen on
validation, the checkpoint the tables read; and "run", the text of each finished run's small
files (RUN_FILES: its identity, summary, config, overrides; its metrics.jsonl is not copied there
but rebuilt from its "row" records on restore, the same values, so the file holds each value once).
The report writes the tables (headline losses, then the others against DPO, seed-level tests),
expected validation performance over the trials and the win rate at matched KL, from the file; the
run directories are not read.

A study resumes in another session from its file: `restore_study` writes each finished run the file
holds back into the sweep (its small files and test scores, without checkpoints or models, marked by
RESTORED_MARK), where prefopt.train finds it finished with the same identity and skips it; a run
directory already there that holds another run is refused.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pandas as pd
from search_space import METHOD

PROMPT_SPLIT = "test"  # split whose per-prompt scores are kept: the one the tables report
PROMPT_FIELDS = ("prompt_index", "win", "policy_reward", "reference_reward", "policy_length")
CONFIG_METADATA = b"prefopt_config_columns"  # Parquet metadata key: the frame's config columns
METRIC_METADATA = b"prefopt_metric_columns"  # Parquet metadata key: the logged metrics' columns
JSON_METADATA = b"prefopt_json_columns"  # Parquet metadata key: columns stored as JSON text
METRICS_FILE = "metrics.jsonl"  # a run's logged rows: rebuilt on restore from its "row" records
BASELINE = "dpo"  # the method every other is compared with
RUN_FILES = (  # a run's small files kept in "run" records (those it has), enough to resume past it
    "run_identity.json",
    "summary.json",
    "config.yaml",
    "overrides.yaml",
    "provenance.json",
    "data_report.json",
)
# what tells two runs apart when a directory is already there: the identity, else (a run of a
# prefopt that wrote none) the resolved config
IDENTITY_FILES = ("run_identity.json", "config.yaml")
RESTORED_MARK = "restored.json"  # in a restored run directory: the file it was restored from


def _selection_metric(frame: pd.DataFrame) -> str:
    from prefopt.report import selection_metric

    metric = selection_metric(frame)
    if metric is None:
        raise ValueError("no finished run has a validation win rate or reward accuracy")
    return metric


def prompt_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The PROMPT_SPLIT samples of each run at its best validation checkpoint (where scored)."""
    from prefopt.analysis.selection import checkpoint_rows
    from prefopt.results.sweep import load_samples

    chosen = checkpoint_rows(frame, "best", _selection_metric(frame))
    tables = []
    for row in chosen.itertuples():
        samples = load_samples(row.run_dir, row.step, PROMPT_SPLIT)
        if samples is None:
            continue
        kept = samples[[c for c in PROMPT_FIELDS if c in samples]]
        tables.append(kept.assign(run_id=row.run_id, split=PROMPT_SPLIT, step=row.step))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def run_records(frame: pd.DataFrame) -> pd.DataFrame:
    """One record per finished run: its run_id and the text of its RUN_FILES as a JSON object (an
    unfinished run cannot resume without its checkpoints, which stay behind: it runs again)."""
    records = []
    finished = frame[frame["status"] == "finished"]
    for run_id, run_dir in finished.groupby("run_id")["run_dir"].first().items():
        present = [name for name in RUN_FILES if (Path(run_dir) / name).is_file()]
        texts = {name: (Path(run_dir) / name).read_text(encoding="utf-8") for name in present}
        records.append({"run_id": run_id, "run_files": json.dumps(texts, sort_keys=True)})
    return pd.DataFrame(records)


def write_samples(prompts: pd.DataFrame, run_dir: Path) -> None:
    """samples/step_<step>_<split>.jsonl under `run_dir` from one run's prompt records (the layout
    prefopt.results.sweep.load_samples reads; `win` kept as the judge's `preference`)."""
    for (split, step), group in prompts.groupby(["split", "step"]):
        path = run_dir / "samples" / f"step_{int(step):07d}_{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        group.drop(columns=["run_id", "split", "step"]).assign(preference=group["win"]).to_json(
            path, orient="records", lines=True
        )


def _missing(value) -> bool:
    """None or a float NaN: a value the row did not log."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def metrics_text(rows: pd.DataFrame, metrics: list[str], encoded: list[str]) -> str:
    """metrics.jsonl of one run from its "row" records: split, step, epoch and each logged metric
    the row has (a metric the row lacks was not logged in it; ``encoded`` metrics were stored as
    JSON text and are decoded). The placeholder row of a run that logged nothing is left out."""
    lines = []
    for _, row in rows.iterrows():
        if _missing(row["split"]) or _missing(row["step"]):
            continue
        epoch = None if _missing(row["epoch"]) else row["epoch"]
        logged = {"split": row["split"], "step": int(row["step"]), "epoch": epoch}
        for name in metrics:
            value = row.get(name)
            if not _missing(value):
                logged[name] = json.loads(value) if name in encoded else value
        plain = {
            key: value.item() if hasattr(value, "item") else value for key, value in logged.items()
        }
        lines.append(json.dumps(plain, sort_keys=True))  # numpy scalars as Python numbers
    return "".join(line + "\n" for line in lines)


def restore_study(path: Path, root: Path) -> int:
    """Write every run of the study file `path` that `root` lacks back under `root` (each one
    published whole: written aside, then renamed); returns how many were written. A run directory
    already there must hold the same run (the same run_identity.json), else a ValueError names it."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    data = table.to_pandas()
    metadata = table.schema.metadata or {}
    metrics = json.loads(metadata.get(METRIC_METADATA, b"[]"))
    encoded = json.loads(metadata.get(JSON_METADATA, b"[]"))
    rows = data[data["record"] == "row"]
    runs = data[data["record"] == "run"]
    columns = [c for c in ("run_id", "split", "step", *PROMPT_FIELDS) if c in data]
    prompts = data.loc[data["record"] == "prompt", columns]
    prompts = prompts.dropna(axis=1, how="all") if len(prompts) else prompts
    written = 0
    for run in runs.itertuples():
        files = json.loads(run.run_files)
        target = root / run.run_id
        if target.exists():
            name = IDENTITY_FILES[0] if IDENTITY_FILES[0] in files else IDENTITY_FILES[1]
            here = target / name
            if not here.is_file() or here.read_text(encoding="utf-8") != files.get(name):
                raise ValueError(
                    f"{target} holds another run than {path}'s {run.run_id} (its {name} differs "
                    "or is missing); move one of them aside"
                )
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.", dir=target.parent))
        if METRICS_FILE not in files:  # files of earlier exports hold it
            run_rows = rows[rows["run_id"] == run.run_id]
            files[METRICS_FILE] = metrics_text(run_rows, metrics, encoded)
        for name, text in files.items():
            (scratch / name).write_text(text, encoding="utf-8")
        write_samples(prompts[prompts["run_id"] == run.run_id], scratch)
        (scratch / RESTORED_MARK).write_text(json.dumps({"from": str(path)}) + "\n")
        scratch.rename(target)
        written += 1
    return written


def _needs_json(column: pd.Series) -> bool:
    """Whether Parquet needs the column as JSON text: values mixed or nested, not all strings."""
    values = column.dropna()
    if column.dtype != object or values.map(type).nunique() == 0:
        return False
    return not values.map(lambda v: isinstance(v, str)).all()


def export_study(root: Path, path: Path) -> Path:
    """Write the study under `root` (multirun/<study>) to the Parquet file `path`; the runs an
    existing `path` holds are restored under `root` first, so that none is lost."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prefopt.results import load_sweep
    from prefopt.results.sweep import config_columns

    if path.is_file():
        restore_study(path, root)
    frame = load_sweep(root)
    frame["phase"] = frame["run_id"].str.split("/").str[0]
    columns = config_columns(frame)
    prompts = prompt_records(frame)
    records = [
        frame.drop(columns="run_dir").assign(record="row"),
        prompts.assign(record="prompt"),
        run_records(frame).assign(record="run"),
    ]
    data = pd.concat(records, ignore_index=True)
    encoded = [name for name in data.columns if _needs_json(data[name])]
    for name in encoded:
        data[name] = data[name].map(lambda v: None if _missing(v) else json.dumps(v, default=str))
    data.attrs = {}
    table = pa.Table.from_pandas(data, preserve_index=False)
    metadata = {
        **(table.schema.metadata or {}),
        CONFIG_METADATA: json.dumps(columns).encode(),
        METRIC_METADATA: json.dumps(frame.attrs["metric_columns"]).encode(),
        JSON_METADATA: json.dumps(encoded).encode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")
    runs = frame["run_id"].nunique()
    print(f"wrote {path}: {runs} runs, {len(prompts)} prompt scores, {path.stat().st_size} bytes")
    return path


def read_study(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics rows with their config columns, prompt records) of a study's Parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    data = table.to_pandas()
    dropped = ["record", "run_files", *PROMPT_FIELDS]
    rows = data[data["record"] == "row"].drop(columns=dropped, errors="ignore")
    rows = rows.reset_index(drop=True)
    rows.attrs["config_columns"] = json.loads(table.schema.metadata[CONFIG_METADATA])
    columns = [c for c in ("run_id", "split", "step", *PROMPT_FIELDS) if c in data]
    prompts = data.loc[data["record"] == "prompt", columns]  # none where no run scored test
    return rows, prompts.dropna(axis=1, how="all")


def _with_samples(rows: pd.DataFrame, prompts: pd.DataFrame, scratch: Path) -> pd.DataFrame:
    """`rows` whose run_dir points at samples files rebuilt under `scratch` from the prompt
    records (the layout prefopt.results.sweep.load_samples reads; `win` kept as `preference`)."""
    for run_id, group in prompts.groupby("run_id"):
        write_samples(group, scratch / run_id)
    rebuilt = rows.assign(run_dir=[str(scratch / run_id) for run_id in rows["run_id"]])
    rebuilt.attrs = rows.attrs
    return rebuilt


def markdown_lines(frame: pd.DataFrame) -> list[str]:
    """A frame as the lines of a markdown table (3 significant digits), then a blank line."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_markdown(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` as a Markdown file (its folder made), say so, return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {path}")
    return path


def report_study(path: Path, out: Path) -> Path:
    """report.md, table_headline.tex, table_others.tex and figures/ under `out`, from `path`."""
    from search_space import load_space

    from prefopt.analysis import (
        checkpoint_rows,
        method_table,
        plot_expected_validation,
        save_figure,
        win_rate_at_kl,
    )

    rows, prompts = read_study(path)
    driver_keys = [c for c in rows.columns if c.startswith("search.")]  # the spaces, not settings
    columns = [c for c in rows.attrs["config_columns"] if c not in driver_keys]
    rows = rows.drop(columns=driver_keys)
    rows.attrs["config_columns"] = columns
    metric = _selection_metric(rows)
    lines = [f"# Study report: {out.name}", "", f"From {path.name} alone; selected on validation "]
    lines[-1] += f"{metric}, reported on {PROMPT_SPLIT}.\n"
    losses = sorted(rows[METHOD].dropna().unique())
    headline = [loss for loss in losses if load_space(loss).headline]
    groups = {"headline": headline, "others": [x for x in losses if x not in headline]}
    with tempfile.TemporaryDirectory() as scratch:
        frame = _with_samples(rows, prompts, Path(scratch))
        confirm = frame[frame["phase"] == "confirm"]
        for name, members in groups.items():
            family = [loss for loss in members if loss != BASELINE]
            part = confirm[confirm[METHOD].isin({*members, BASELINE})]
            if part.empty or not family:
                continue
            part.attrs = frame.attrs
            table = method_table(
                part, method=METHOD, select_metric=metric, baseline=BASELINE, family=family
            )
            out.mkdir(parents=True, exist_ok=True)
            (out / f"table_{name}.tex").write_text(table.to_latex())
            lines += [f"## Confirmation, {name} losses", "", table.to_markdown(), ""]
        trials = frame[frame["phase"] == "trials"]
        if not trials.empty:
            trials.attrs = frame.attrs
            chosen = checkpoint_rows(trials, "best", metric, report_split="validation")
            scores = {loss: 100 * runs["score"] for loss, runs in chosen.groupby(METHOD)}
            save_figure(plot_expected_validation(scores), out / "figures", "expected_validation")
            lines += [
                "## Expected validation performance",
                "",
                "![EVP](figures/expected_validation.png)",
            ]
            if {"kl", "win_rate_ci_low", "win_rate_ci_high"} <= set(chosen.columns):
                points = chosen.rename(
                    columns={"win_rate_ci_low": "ci_low", "win_rate_ci_high": "ci_high"}
                )
                matched = win_rate_at_kl(points, method=METHOD)
                lines += [
                    "",
                    "## Validation win rate at matched KL (nats)",
                    "",
                    *markdown_lines(matched),
                ]
    return write_markdown(out / "report.md", lines)


def agreement_study(paths: list[Path], out: Path) -> Path:
    """agreement.md under `out`: each method's confirmed test rank in every study's task and
    Kendall's tau-b between the tasks (prefopt.analysis.task_agreement), from the studies' files."""
    from prefopt.analysis.task_agreement import TASK, agreement_lines, seed_scores

    parts = []
    for path in paths:
        rows, _ = read_study(path)
        confirm = rows[rows["phase"] == "confirm"]
        if confirm.empty or TASK not in confirm or confirm[TASK].nunique() != 1:
            raise ValueError(f"{path}: needs confirmation runs of one task (column {TASK})")
        parts.append(confirm.assign(run_dir=confirm["run_id"]))  # no samples are read
    frame = pd.concat(parts, ignore_index=True)
    if frame[TASK].nunique() != len(paths):
        raise ValueError(f"the studies {[str(p) for p in paths]} must each hold another task")
    frame.attrs["config_columns"] = sorted({c for p in parts for c in p.attrs["config_columns"]})
    metric = _selection_metric(frame)
    scores = seed_scores(frame, method=METHOD, select_metric=metric, metric=metric)
    sources = ", ".join(f"{p.parent.name}/{p.name}" for p in paths)
    lines = [
        f"# Agreement between tasks: {out.name}",
        "",
        f"From {sources}: confirmation runs, test {metric} at each run's checkpoint chosen on "
        "validation, mean over seeds; rank 1 is the best.",
        "",
        *agreement_lines(scores, metric),
    ]
    return write_markdown(out / "agreement.md", lines)
