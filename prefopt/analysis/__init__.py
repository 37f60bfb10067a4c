"""Figures and tables from a sweep's run store (see `prefopt.results.load_sweep`).

from prefopt.results import load_sweep
from prefopt import analysis
frame = load_sweep("multirun/variants")
analysis.method_table(frame).to_markdown()
analysis.save_figure(analysis.plot_overfitting(analysis.selected_setting_rows(frame)), "out", "of")
"""

from prefopt.analysis.frontier import pareto_frontier, plot_frontier
from prefopt.analysis.heatmaps import cell_values, methods_with_grid, plot_heatmaps
from prefopt.analysis.overfitting import (
    find_overfitting,
    mean_curve,
    overfitting_summary,
    plot_overfitting,
)
from prefopt.analysis.selection import (
    checkpoint_rows,
    hyperparameter_columns,
    select_hyperparameters,
    selected_setting_rows,
)
from prefopt.analysis.setting_curves import plot_setting_curves
from prefopt.analysis.stats import crossed_bootstrap_ci, paired_prompt_test, t_interval
from prefopt.analysis.style import save_figure
from prefopt.analysis.tables import MethodTable, method_table
from prefopt.analysis.trajectories import plot_logps, plot_proxy_gold

__all__ = [
    "MethodTable",
    "cell_values",
    "checkpoint_rows",
    "crossed_bootstrap_ci",
    "find_overfitting",
    "hyperparameter_columns",
    "mean_curve",
    "method_table",
    "methods_with_grid",
    "overfitting_summary",
    "paired_prompt_test",
    "pareto_frontier",
    "plot_setting_curves",
    "plot_frontier",
    "plot_heatmaps",
    "plot_logps",
    "plot_overfitting",
    "plot_proxy_gold",
    "save_figure",
    "select_hyperparameters",
    "selected_setting_rows",
    "t_interval",
]
