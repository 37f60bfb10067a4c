"""Print a sweep's paper table (Markdown, or LaTeX with --latex).

python analysis/make_table.py multirun/main
python analysis/make_table.py multirun/main --checkpoint final --latex > table.tex
"""

import argparse

from prefopt.analysis import method_table
from prefopt.analysis.selection import CHECKPOINTS
from prefopt.results import load_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="directory holding the sweep's run directories")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    parser.add_argument("--baseline", default="dpo", help="method the seed-level tests compare to")
    parser.add_argument("--latex", action="store_true", help="LaTeX instead of Markdown")
    args = parser.parse_args()
    table = method_table(load_sweep(args.sweep_dir), args.checkpoint, baseline=args.baseline)
    print(table.to_latex() if args.latex else table.to_markdown())


if __name__ == "__main__":
    main()
