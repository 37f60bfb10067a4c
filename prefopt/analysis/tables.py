"""The paper table: one row per method, mean and 95% CI, best in bold, Markdown and LaTeX.

Hyperparameters and checkpoints are chosen on validation (`selection.py`), numbers are reported
on test. Win rate, judge reward and length come from the per-prompt samples files when every
selected run has them, with a crossed bootstrap over seeds and prompts; every other column (and
those when samples are missing) uses a Student t interval over seeds. KL is an estimate from samples
that can fall below 0: it is shown as mean ± standard error (`stats.seed_mean_se`), clipped at 0
and marked ‡ where the estimate is negative. An interval from fewer than 3 seeds is marked §:
with one seed it covers prompts only, with two the seed spread rests on one degree of freedom.

Methods are compared with the baseline at the seed level (`seed_tests.compare_methods`): Welch's
t on the per-seed test values of the selection metric, checked by the studentized permutation
test over seeds, both Holm-adjusted over the family of comparisons the call declares (every
method against the baseline unless given), with the power of Welch's test at a stated effect for
the observed seed spreads and the effect it detects with 80% power; "n/a" where a side has fewer
than 2 seeds. The Wilcoxon signed-rank test of per-prompt win scores (means over seeds) against
the baseline stays as a second column: it is conditional on the trained models, it asks whether
these trained models differ, not whether the methods do.

A method whose selected checkpoint is the start of training (step 0, pi_ref itself) in some seed is
marked † with a note: its numbers are the untrained model's. Bold marks a column's best among the
other methods, and only where at least two of them differ at the digits shown.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prefopt.analysis.seed_tests import TARGET_POWER, compare_methods
from prefopt.analysis.selection import (
    START,
    checkpoint_rows,
    hyperparameter_columns,
    select_hyperparameters,
)
from prefopt.analysis.stats import (
    Interval,
    crossed_bootstrap_ci,
    paired_prompt_test,
    seed_mean_se,
    t_interval,
)
from prefopt.analysis.table_text import (
    START_MARK,
    cell_parts,
    latex_cell,
    latex_escape,
    latex_symbols,
    p_text,
    plain_cell,
    seed_test_caption,
    table_caption,
    table_notes,
)
from prefopt.results.sweep import load_samples

POWER_EFFECT = 4.0  # display units (points of a rate): the stated effect of the power column
SEED_TEST_FIELDS = (  # data columns of the seed-level comparison with the baseline
    "difference",
    "welch_p",
    "welch_p_holm",
    "permutation_p",
    "permutation_p_holm",
    "power",
    "detectable_effect",
)


@dataclass(frozen=True)
class Column:
    """A table column: the metric, its header, a display scale, digits and which way is better."""

    metric: str
    header: str
    scale: float = 1.0
    digits: int = 2
    higher_is_better: bool | None = None  # None: no best is marked (KL, length)
    sample_field: str | None = None  # per-prompt field of the samples files, if any
    is_fraction: bool = False  # a rate in [0, 1]: interval bounds are clipped to it
    se_metric: str | None = None  # the runs' logged standard error: shown as mean ± SE, not a CI
    nonnegative: bool = False  # never below 0 (KL): a negative estimate is shown as 0, marked

    @property
    def spread_fields(self) -> tuple[str, str]:
        """Suffixes of the data columns beside `metric`: the SE and the unclipped estimate, or the
        interval's bounds."""
        return ("_se", "_estimate") if self.se_metric else ("_low", "_high")


COLUMNS = (
    Column("win_rate", "Win rate (%)", 100.0, 1, True, "win", is_fraction=True),
    Column("lc_win_rate", "LC win rate (%)", 100.0, 1, True, is_fraction=True),
    Column("judge_reward", "Judge reward", 1.0, 2, True, "policy_reward"),
    Column("kl", "KL (nats)", 1.0, 2, se_metric="kl_se", nonnegative=True),
    Column("length", "Length (tokens)", 1.0, 1, None, "policy_length"),
    Column("reward_accuracy", "Reward acc. (%)", 100.0, 1, True, is_fraction=True),
)


@dataclass
class MethodTable:
    """Numbers (`data`: one row per method, `n_seeds`, `n_at_start` (seeds whose checkpoint is the
    start), `<metric>` and its spread fields, see `Column.spread_fields`, the seed-level
    comparison with the baseline (`SEED_TEST_FIELDS`, NaN outside the family) and `prompt_p`), the
    text around them (`caption`, `notes` under the table); `to_markdown()` and `to_latex()` render
    it. `baseline`, `family` (the methods compared with it), `seed_metric` and `effect` (of the
    power column, in the table's units of `seed_metric`)."""

    data: pd.DataFrame
    columns: tuple[Column, ...]
    caption: str
    bayes_accuracy: float
    baseline: Hashable
    family: tuple[Hashable, ...]
    seed_metric: str  # the metric of the seed-level tests (the selection metric)
    effect: float
    unfinished: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def best_methods(self, metric: str = "win_rate") -> list[str]:
        """The methods to mark best in `metric`'s column: those tied for the best value at the
        digits shown, among methods with a trained checkpoint in every seed; none when fewer than
        two such values differ (a lone method, or a column of ties, has no best)."""
        column = next(c for c in self.columns if c.metric == metric)
        if column.higher_is_better is None:
            return []
        trained = self.data[(self.data["n_seeds"] > 0) & (self.data["n_at_start"] == 0)]
        values = trained.set_index("method")[metric].dropna()
        shown = values.map(lambda value: float(f"{value:.{column.digits}f}"))  # as displayed
        if shown.nunique() < 2:
            return []
        best = shown.max() if column.higher_is_better else shown.min()
        return sorted(shown.index[shown == best])

    def best_method(self, metric: str = "win_rate") -> str | None:
        """The first of `best_methods(metric)`, None when the column has no best."""
        best = self.best_methods(metric)
        return best[0] if best else None

    def _cells(self, bold, render) -> tuple[list[str], list[list[str]]]:
        header = [
            "Method",
            "Setting",
            "Seeds",
            *[c.header for c in self.columns],
            "p seeds (Holm)",
            "p perm. (Holm)",
            f"Power at Δ {self.effect:g} (%)",
            f"Δ at {100 * TARGET_POWER:.0f}% power",
            "p prompts (cond.)",
        ]
        best = {c.metric: self.best_methods(c.metric) for c in self.columns}
        rows = []
        for _, row in self.data.iterrows():
            mark = START_MARK if row["n_at_start"] > 0 else ""
            cells = [f"{row['method']}{mark}", row["setting"] or "default", str(row["n_seeds"])]
            for column in self.columns:
                text = render(*cell_parts(row, column))
                cells.append(bold(text) if row["method"] in best[column.metric] else text)
            cells += self._seed_test_cells(row)
            cells.append("—" if np.isnan(row["prompt_p"]) else p_text(row["prompt_p"]))
            rows.append(cells)
        if not np.isnan(self.bayes_accuracy):
            ceiling = ["Bayes-optimal (ceiling)", "", ""] + ["" for _ in self.columns] + [""] * 5
            accuracy = [c.metric for c in self.columns].index("reward_accuracy")
            ceiling[3 + accuracy] = f"{100 * self.bayes_accuracy:.1f}"
            rows.append(ceiling)
        return header, rows

    def _seed_test_cells(self, row) -> list[str]:
        """p seeds, p perm., power, detectable effect: "base" for the baseline, "—" outside the
        family, "n/a" where a side has fewer than 2 seeds (or no spread)."""
        if row["method"] == self.baseline:
            return ["base"] * 4
        if row["method"] not in self.family:
            return ["—"] * 4
        p_values = [row["welch_p_holm"], row["permutation_p_holm"]]
        cells = ["n/a" if np.isnan(p) else p_text(p) for p in p_values]
        power, effect = row["power"], row["detectable_effect"]
        digits = next((c.digits for c in self.columns if c.metric == self.seed_metric), 2)
        cells.append("n/a" if np.isnan(power) else f"{100 * power:.0f}")
        cells.append("n/a" if np.isnan(effect) else f"{effect:.{digits}f}")
        return cells

    def to_markdown(self) -> str:
        header, rows = self._cells(lambda t: f"**{t}**", plain_cell)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        notes = "".join(f"\n{note}\n" for note in self.notes)
        return f"{self.caption}\n\n" + "\n".join(lines) + "\n" + notes

    def to_latex(self) -> str:
        header, rows = self._cells(lambda t: rf"\textbf{{{t}}}", latex_cell)
        lines = [
            r"\begin{table}[t]",
            r"\centering\small",
            rf"\caption{{{latex_escape(self.caption)}}}",
            r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for cells in rows:
            escaped = [latex_escape(c) for c in cells[:3]] + [latex_symbols(c) for c in cells[3:]]
            lines.append(" & ".join(escaped) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\smallskip{{\footnotesize {latex_escape(note)}}}" for note in self.notes]
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"


def method_table(
    frame: pd.DataFrame,
    checkpoint: str = "best",
    method: str = "loss.name",
    baseline: str = "dpo",
    select_split: str = "validation",
    report_split: str = "test",
    confidence: float = 0.95,
    columns: tuple[Column, ...] = COLUMNS,
    n_boot: int = 2000,
    select_metric: str = "win_rate",
    family: Sequence[Hashable] | None = None,
    effect: float = POWER_EFFECT,
) -> MethodTable:
    """The paper table of a sweep frame from `load_sweep` (all splits); settings and checkpoints
    maximise the mean `select_metric` on `select_split` (reward_accuracy for a sweep that did not
    generate).

    `family`: the methods compared with `baseline` at the seed level, declared before the runs
    (Holm corrects over all of them, a method without a finished run included); None: every other
    method of the frame. `effect`: the difference, in the table's units of `select_metric`, at
    which the power of each comparison is reported."""
    if select_metric not in frame:
        raise ValueError(f"select_metric {select_metric!r} is not a column of the frame")
    checkpoints = checkpoint_rows(frame, checkpoint, select_metric, select_split, report_split)
    if checkpoints.empty:
        raise ValueError(f"no run of the sweep has a {select_split!r} {select_metric} to select on")
    hyperparameters = hyperparameter_columns(frame, method=method)
    selected = select_hyperparameters(checkpoints, method, hyperparameters)
    prompt_scores = {
        name: _prompt_scores(runs, report_split) for name, runs in selected.groupby(method)
    }
    rows = []
    for name, runs in selected.groupby(method, sort=True):
        row = {
            "method": name,
            "setting": runs["setting"].iloc[0],
            "n_seeds": len(runs),
            "n_at_start": int((runs["step"] == START).sum()),
        }
        for column in columns:
            if column.se_metric:
                row.update(_mean_and_se(runs, column))
                continue
            interval = _interval(runs, column, prompt_scores[name], confidence, n_boot)
            if column.is_fraction:
                interval = interval.clipped(0.0, 1.0)
            row[column.metric] = interval.mean * column.scale
            row[f"{column.metric}_low"] = interval.low * column.scale
            row[f"{column.metric}_high"] = interval.high * column.scale
        row["prompt_p"] = _p_value(prompt_scores, name, baseline)
        rows.append(row)
    for name in sorted(set(frame[method].dropna()) - set(selected[method])):
        rows.append(
            {"method": name, "setting": "no finished run", "n_seeds": 0, "n_at_start": 0}
            | {"prompt_p": np.nan}
        )
    if family is None:
        family = sorted(set(frame[method].dropna()) - {baseline})
    family = tuple(family)
    scale = next((c.scale for c in columns if c.metric == select_metric), 1.0)
    seed_values = {name: scale * runs[select_metric] for name, runs in selected.groupby(method)}
    seed_tests = _seed_tests(seed_values, family, baseline, effect)
    data = pd.DataFrame(rows)
    for name in SEED_TEST_FIELDS:
        data[name] = data["method"].map(seed_tests[name]).astype(float)
    data = data.reindex(
        columns=["method", "setting", "n_seeds", "n_at_start", *SEED_TEST_FIELDS, "prompt_p"]
        + [f"{c.metric}{s}" for c in columns for s in ("", *c.spread_fields)]
    )
    unfinished = _unfinished_runs(frame)
    bayes = (
        frame.loc[frame["split"] == report_split, "bayes_accuracy"]
        if "bayes_accuracy" in frame
        else []
    )
    bayes_accuracy = float(np.nanmean(bayes)) if len(bayes) else float("nan")
    selection = f"{select_split} {select_metric.replace('_', ' ')}"
    tests = seed_test_caption(baseline, family, effect, scale, select_metric, report_split)
    caption = table_caption(
        data, columns, checkpoint, baseline, selection, report_split, confidence, unfinished, tests
    )
    notes = table_notes(data, columns, checkpoint)
    return MethodTable(
        data,
        columns,
        caption,
        bayes_accuracy,
        baseline,
        family,
        select_metric,
        effect,
        unfinished,
        notes,
    )


def _seed_tests(seed_values, family, baseline, effect: float) -> pd.DataFrame:
    """`SEED_TEST_FIELDS` of each family method against `baseline`, indexed by method, Holm over
    the family; a method without runs has no seeds."""
    if not family:
        return pd.DataFrame(columns=list(SEED_TEST_FIELDS), dtype=float)
    seed_means = {name: seed_values.get(name, []) for name in (*family, baseline)}
    comparisons = [(name, baseline) for name in family]
    return compare_methods(seed_means, comparisons, effect).set_index("method")[
        list(SEED_TEST_FIELDS)
    ]


def _prompt_scores(runs: pd.DataFrame, split: str) -> dict[str, np.ndarray] | None:
    """Per-prompt fields of the selected runs' samples {field: (S, P)}; None if a run lacks them."""
    samples = []
    for _, run in runs.iterrows():
        table = load_samples(run["run_dir"], run["step"], split)
        if table is None:
            return None
        samples.append(table.set_index("prompt_index"))
    prompts = sorted(set().union(*(s.index for s in samples)))
    fields = set.intersection(*(set(s.columns) for s in samples))
    return {
        name: np.stack([s[name].reindex(prompts).to_numpy(dtype=float) for s in samples])
        for name in fields
        if name in {"win", "policy_reward", "policy_length"}
    } | {"prompts": np.asarray(prompts)}


def _interval(runs, column: Column, scores, confidence, n_boot) -> Interval:
    if scores is not None and column.sample_field in scores:
        return crossed_bootstrap_ci(scores[column.sample_field], confidence, n_boot)
    if column.metric not in runs:
        return Interval(np.nan, np.nan, np.nan, 0)
    return t_interval(runs[column.metric], confidence)


def _mean_and_se(runs: pd.DataFrame, column: Column) -> dict[str, float]:
    """`<metric>` (clipped at 0 for a nonnegative column), `<metric>_se`, `<metric>_estimate`."""
    missing = pd.Series(np.nan, index=runs.index)
    estimates = runs.get(column.metric, missing)
    errors = runs.get(column.se_metric, missing)
    mean, se = (value * column.scale for value in seed_mean_se(estimates, errors))
    shown = max(mean, 0.0) if column.nonnegative and not np.isnan(mean) else mean
    return {column.metric: shown, f"{column.metric}_se": se, f"{column.metric}_estimate": mean}


def _p_value(prompt_scores, name: str, baseline: str) -> float:
    """Paired test of per-prompt win scores against the baseline over their common prompts."""
    mine, base = prompt_scores.get(name), prompt_scores.get(baseline)
    if name == baseline or mine is None or base is None:
        return float("nan")
    common, mine_at, base_at = np.intersect1d(mine["prompts"], base["prompts"], return_indices=True)
    if common.size == 0:
        return float("nan")
    return paired_prompt_test(mine["win"][:, mine_at], base["win"][:, base_at])


def _unfinished_runs(frame: pd.DataFrame) -> list[str]:
    runs = frame.drop_duplicates("run_id")
    runs = runs[runs["status"] != "finished"].sort_values("run_id")
    return [
        f"{row.run_id} ({row.status}{': ' + row.error if isinstance(row.error, str) else ''})"
        for row in runs.itertuples()
    ]
