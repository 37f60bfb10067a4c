"""Cost of one evaluation: 400 prompts, a ~1M-parameter GPT-2, the default sampling settings.

pytest -m slow tests/eval/test_cost.py -s
"""

import time

import pytest
import torch
import yaml
from conftest import PROMPTS, WordCountJudge, build_tokenizer, gpt2_config
from transformers import GPT2LMHeadModel

from prefopt.eval import Evaluator


@pytest.mark.slow
def test_seconds_per_evaluation_of_400_prompts(tmp_path):
    with open("conf/eval/default.yaml") as handle:
        eval_cfg = {**yaml.safe_load(handle), "num_prompts": None}
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(tokenizer, n_embd=128, n_layer=5)).eval()
    n_params = sum(p.numel() for p in model.parameters())
    prompts = {"validation": [PROMPTS[i % len(PROMPTS)] for i in range(400)]}
    evaluator = Evaluator(eval_cfg, WordCountJudge(), tokenizer, model, prompts, tmp_path, "k")
    start = time.perf_counter()
    evaluator.reference("validation")
    reference_seconds = time.perf_counter() - start
    metrics = evaluator.evaluate(model, "validation", step=0, seed=1)
    print(
        f"\n{n_params / 1e6:.2f}M parameters, 400 prompts, max_new_tokens "
        f"{eval_cfg['max_new_tokens']}, {torch.get_num_threads()} thread(s): pi_ref samples "
        f"{reference_seconds:.1f} s once, then {metrics['eval_seconds']:.1f} s per evaluation "
        f"(mean length {metrics['length']:.1f} tokens)"
    )
    assert metrics["kl"] == 0.0
    assert metrics["eval_seconds"] < 120
