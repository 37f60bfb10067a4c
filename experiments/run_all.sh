#!/usr/bin/env bash
# Every committed study, one after another, two runs at a time (joblib, one thread each).
# Results go to results/<study>/; each step skips runs that already finished.
set -euo pipefail
cd "$(dirname "$0")/.."
J="launcher=joblib"
python experiments/overfitting.py "$J"
python experiments/sensitivity.py "$J"
python experiments/noisy_preferences.py "$J"
python experiments/proxy_vs_gold.py "$J"
python experiments/data_study.py "$J"
python experiments/compare_losses.py "$J"
python experiments/wrong_reference.py
python experiments/reliability/kill_resume.py --kills 20 --out results/reliability
python experiments/eval_cost.py --runs 3
python -m prefopt.train -m experiment=agreement && python -m prefopt.report multirun/agreement --out results/agreement
python experiments/simpo_study.py run && python experiments/simpo_study.py report
