"""One look for every figure: sized for a paper's column, saved as PNG and PDF.

A figure of one panel is one column wide (3.25 in); several panels span both columns (6.75 in),
at most three per row. Fonts are 8 pt so that they stay 8 pt when the figure is printed at width.
Figures are made with pyplot, so that a notebook shows them inline; the report command selects
the Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

COLUMN_WIDTH = 3.25  # inches: one column of a two-column paper
FULL_WIDTH = 6.75  # inches: both columns
PANEL_HEIGHT = 2.1  # inches per row of panels
PAPER_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # TrueType in PDFs, editable and accepted by publishers
}
# How a run that did not finish is drawn: open markers, dotted lines.
UNFINISHED_STYLE = {"linestyle": ":", "marker": "x"}


def panel_grid(n_panels: int, max_columns: int = 3, height: float = PANEL_HEIGHT):
    """(figure, flat list of n_panels axes); extra grid cells are removed."""
    n_columns = min(n_panels, max_columns)
    n_rows = -(-n_panels // n_columns)
    width = COLUMN_WIDTH if n_columns == 1 else FULL_WIDTH
    figure, axes = plt.subplots(
        n_rows, n_columns, figsize=(width, height * n_rows), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for extra in flat[n_panels:]:
        extra.remove()
    return figure, flat[:n_panels]


def is_row_start(index: int, n_panels: int, max_columns: int = 3) -> bool:
    """Whether panel `index` of a `panel_grid` starts a row (its left axis label is drawn)."""
    return index % min(n_panels, max_columns) == 0


def is_row_end(index: int, n_panels: int, max_columns: int = 3) -> bool:
    """Whether panel `index` ends a row (a twin axis label on the right is drawn)."""
    return (
        index == n_panels - 1
        or index % min(n_panels, max_columns) == min(n_panels, max_columns) - 1
    )


def twin_axis(axis, color):
    """A right-hand y axis sharing x, its spine visible and its ticks in `color`."""
    twin = axis.twinx()
    twin.spines["right"].set_visible(True)
    twin.tick_params(axis="y", colors=color)
    return twin


def figure_legend(figure, handles: dict) -> None:
    """One legend for the whole figure, below the panels: 2 columns at column width, else 4."""
    wide = figure.get_figwidth() > COLUMN_WIDTH + 0.1
    n_columns = min(len(handles), 4 if wide else 2)
    figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=n_columns)


def method_colors(names) -> dict[str, tuple]:
    """A fixed colour per method name (sorted order through matplotlib's tab10 cycle)."""
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(names)))}


def save_figure(figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `name`.png (300 dpi) and `name`.pdf into out_dir, close the figure; the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    with plt.rc_context(PAPER_RC):
        for path in paths:
            figure.savefig(path, dpi=300)
    plt.close(figure)
    return paths
