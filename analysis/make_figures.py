"""Draw chosen figures of a sweep into a folder (PNG and PDF), one file pair per figure; a figure
the report would skip (no data, or no information) is skipped with a line saying why.

python analysis/make_figures.py multirun/main --out results/main/figures
python analysis/make_figures.py multirun/main --only overfitting frontier --x epoch
"""

import argparse
import sys

import matplotlib

matplotlib.use("Agg")

from prefopt import analysis  # noqa: E402
from prefopt.report import figure_sections  # noqa: E402
from prefopt.results import load_sweep  # noqa: E402
from prefopt.results.sweep import load_best_of_n  # noqa: E402

FIGURES = ("overfitting", "frontier", "heatmaps", "proxy_gold", "logps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="directory holding the sweep's run directories")
    parser.add_argument("--out", required=True, help="folder for the PNG and PDF files")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=FIGURES)
    parser.add_argument("--x", choices=("step", "epoch"), default="step")
    parser.add_argument("--margin", type=float, default=0.02, help="win-rate drop for onset")
    args = parser.parse_args()
    frame = load_sweep(args.sweep_dir)
    chosen = analysis.selected_setting_rows(frame)
    best_of_n = load_best_of_n(args.sweep_dir)
    for _, name, skip_reason, draw in figure_sections(
        frame, chosen, best_of_n, args.x, args.margin, "loss.name"
    ):
        if name not in args.only:
            continue
        if skip_reason is not None:
            print(f"skipped {name}: {skip_reason}", file=sys.stderr)
            continue
        for path in analysis.save_figure(draw(), args.out, name):
            print(path)


if __name__ == "__main__":
    main()
