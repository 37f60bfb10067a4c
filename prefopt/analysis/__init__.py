"""Figures and tables from a sweep's run store (see `prefopt.results.load_sweep`).

from prefopt.results import load_sweep
from prefopt import analysis
frame = load_sweep("multirun/variants")
analysis.method_table(frame).to_markdown()
analysis.save_figure(analysis.plot_overfitting(analysis.selected_setting_rows(frame)), "out", "of")
"""

from prefopt.analysis.expected_validation import (
    expected_max,
    expected_validation,
    plot_expected_validation,
)
from prefopt.analysis.frontier import pareto_frontier, plot_frontier
from prefopt.analysis.heatmaps import cell_values, methods_with_grid, plot_heatmaps
from prefopt.analysis.matched_kl import reward_at_kl_by_seed, win_rate_at_kl
from prefopt.analysis.overfitting import (
    find_overfitting,
    mean_curve,
    overfitting_summary,
    plot_overfitting,
)
from prefopt.analysis.overoptimisation import bon_kl, fit_bon, fit_rl, plot_overoptimisation
from prefopt.analysis.seed_tests import (
    SeedComparison,
    compare_methods,
    compare_seeds,
    detectable_effect,
    holm,
    permutation_test,
    welch_power,
    welch_test,
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
    "bon_kl",
    "fit_bon",
    "fit_rl",
    "plot_overoptimisation",
    "MethodTable",
    "SeedComparison",
    "cell_values",
    "checkpoint_rows",
    "compare_methods",
    "compare_seeds",
    "crossed_bootstrap_ci",
    "detectable_effect",
    "expected_max",
    "expected_validation",
    "find_overfitting",
    "holm",
    "hyperparameter_columns",
    "mean_curve",
    "method_table",
    "methods_with_grid",
    "overfitting_summary",
    "paired_prompt_test",
    "pareto_frontier",
    "permutation_test",
    "plot_setting_curves",
    "plot_expected_validation",
    "plot_frontier",
    "plot_heatmaps",
    "plot_logps",
    "plot_overfitting",
    "plot_proxy_gold",
    "save_figure",
    "select_hyperparameters",
    "selected_setting_rows",
    "t_interval",
    "welch_power",
    "welch_test",
    "reward_at_kl_by_seed",
    "win_rate_at_kl",
]
