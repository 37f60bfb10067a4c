"""The method table's text: its caption, notes and cells, in markdown and LaTeX."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from prefopt.analysis.seed_tests import MAX_EXACT_RELABELINGS, TARGET_POWER
from prefopt.analysis.selection import START

if TYPE_CHECKING:
    from prefopt.analysis.tables import Column

START_MARK = "†"  # after a method whose selected checkpoint is the start in some seed
CLIPPED_MARK = "‡"  # after an estimate below 0 of a quantity that is never negative, shown as 0
FEW_SEEDS_MARK = "§"  # after an interval from fewer than MIN_INTERVAL_SEEDS seeds
MIN_INTERVAL_SEEDS = 3  # fewer seeds: the interval misses (1) or barely measures (2) seed spread


def table_caption(
    data, columns, checkpoint, baseline, selection, report_split, confidence, unfinished, tests
) -> str:
    seeds = ", ".join(f"{m} {n}" for m, n in zip(data["method"], data["n_seeds"], strict=True))
    with_se = [
        c.header.split(" (")[0] + (" (clipped at 0)" if c.nonnegative else "")
        for c in columns
        if c.se_metric
    ]
    se_text = (
        f"; {', '.join(with_se)}: mean ± standard error (one seed: across prompts; several: across "
        "seeds, at least the part the runs' own errors give)"
        if with_se
        else ""
    )
    text = (
        f"{report_split.capitalize()} results at the {checkpoint} checkpoint; hyperparameters and "
        f"checkpoint selected on {selection} (mean over seeds). Mean and "
        f"{100 * confidence:.0f}% CI: crossed bootstrap over seeds and prompts for win rate, judge "
        f"reward and length, Student t over seeds otherwise{se_text}. Best in bold where at least "
        f"two methods differ at the digits shown, never a method marked {START_MARK}.{tests} "
        f"Seeds per method: {seeds}."
    )
    if unfinished:
        text += f" Not finished, left out: {'; '.join(unfinished)}."
    return text


def seed_test_caption(baseline, family, effect, scale, select_metric, split) -> str:
    """The caption's sentences on the seed-level and the prompt-paired tests."""
    metric = select_metric.replace("_", " ")
    units = " points" if scale == 100.0 else ""
    declared = ", ".join(str(name) for name in family) or "none"
    return (
        f" p seeds: Welch's t on the per-seed {split} {metric} of each method against {baseline}; "
        "p perm.: the studentized permutation test over seeds (exact over every relabeling of the "
        f"seeds up to {MAX_EXACT_RELABELINGS:,} of them); both Holm-adjusted over the family of "
        f"{len(family)} {'comparison' if len(family) == 1 else 'comparisons'} declared against "
        f"{baseline} ({declared}). Power: of Welch's "
        f"test at a difference of {effect:g}{units} for the observed seed spreads; Δ: the "
        f"difference it detects with {100 * TARGET_POWER:.0f}% power. n/a: fewer than 2 seeds "
        f"for the method or for {baseline} (or no spread between seeds); —: not in the family. "
        f"p prompts (cond.): Wilcoxon signed-rank test of per-prompt win scores paired by prompt "
        f"against {baseline}, conditional on the trained models: it says whether these trained "
        "models differ, not whether the methods do."
    )


def table_notes(data: pd.DataFrame, columns: tuple[Column, ...], checkpoint: str) -> list[str]:
    """Footnotes for the marks: methods at their start (†), estimates clipped at 0 (‡),
    intervals from fewer than MIN_INTERVAL_SEEDS seeds (§)."""
    notes = []
    at_start = data[data["n_at_start"] > 0]
    if not at_start.empty:
        names = ", ".join(
            f"{row.method} ({row.n_at_start} of {row.n_seeds} seeds)"
            for row in at_start.itertuples()
        )
        notes.append(
            f"{START_MARK} {names}: {checkpoint} checkpoint is the start (step {START}, the "
            "untrained policy): no improvement over pi_ref found. These numbers are the starting "
            "model's, not a result of training."
        )
    for column in columns:
        if not (column.nonnegative and column.se_metric):
            continue  # only an estimate shown with its SE is clipped
        estimate, se = data[f"{column.metric}_estimate"], data[f"{column.metric}_se"]
        clipped = data["method"][estimate < 0]
        if clipped.empty:
            continue
        values = ", ".join(
            f"{data.at[i, 'method']} {estimate[i]:.{column.digits}f}"
            + ("" if np.isnan(se[i]) else f" (SE {se[i]:.{column.digits}f})")
            for i in clipped.index
        )
        name = column.header.split(" (")[0]
        notes.append(
            f"{CLIPPED_MARK} {name} estimate below 0, shown as 0: a {name} is never negative, so a "
            f"negative estimate is sampling noise (or a fault, if far below 0 against its SE): "
            f"{values}."
        )
    few = data[(data["n_seeds"] > 0) & (data["n_seeds"] < MIN_INTERVAL_SEEDS)]
    if not few.empty:
        names = ", ".join(f"{row.method} ({row.n_seeds})" for row in few.itertuples())
        notes.append(
            f"{FEW_SEEDS_MARK} Interval from fewer than {MIN_INTERVAL_SEEDS} seeds: {names}. With "
            "one seed it covers the prompts only, not the spread between seeds; with two, the "
            "seed spread rests on one degree of freedom."
        )
    return notes


def cell_parts(row, column: Column) -> tuple[str, str]:
    """(the mean with its mark, its spread: "± se", "[low, high]" or ""); ("—", "") when NaN."""
    mean = row[column.metric]
    if np.isnan(mean):
        return "—", ""
    digits = column.digits
    mark = FEW_SEEDS_MARK if row["n_seeds"] < MIN_INTERVAL_SEEDS else ""
    text = f"{mean:.{digits}f}"
    if column.se_metric:
        if column.nonnegative and row[f"{column.metric}_estimate"] < 0:
            text += CLIPPED_MARK
        se = row[f"{column.metric}_se"]
        return text, "" if np.isnan(se) else f"± {se:.{digits}f}{mark}"
    low, high = row[f"{column.metric}_low"], row[f"{column.metric}_high"]
    return text, "" if np.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]{mark}"


def p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def plain_cell(mean: str, spread: str) -> str:
    return f"{mean} {spread}" if spread else mean


def latex_cell(mean: str, spread: str) -> str:
    mean, spread = latex_symbols(mean), latex_symbols(spread)
    return rf"{mean}\,{{\scriptsize {spread}}}" if spread else mean


def latex_symbols(text: str) -> str:
    for char, latex in (
        ("—", "--"),
        ("±", r"$\pm$"),
        (START_MARK, r"\textsuperscript{\dag}"),
        (CLIPPED_MARK, r"\textsuperscript{\ddag}"),
        (FEW_SEEDS_MARK, r"\textsuperscript{\S}"),
        ("Δ", r"$\Delta$"),
    ):
        text = text.replace(char, latex)
    return text


def latex_escape(text) -> str:
    text = (
        f"{text:g}" if isinstance(text, float) else str(text)
    )  # numeric method names (trainer.lr)
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&")):
        text = text.replace(char, escaped)
    return latex_symbols(text.replace("#", r"\#"))
