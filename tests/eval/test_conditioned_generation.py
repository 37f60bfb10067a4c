"""A conditioned loss's policy (csft) samples after the good control token; pi_ref and the judge
never see a control token."""

import numpy as np
import torch
from conftest import PROMPTS, WordCountJudge, load_model

from prefopt.data.control_tokens import add_control_tokens, control_token_ids, fit_embeddings
from prefopt.eval import Evaluator, sampling_cache
from prefopt.eval import evaluator as evaluator_module

EVAL_CFG = {"max_new_tokens": 6, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "batch_size": 8}


class RecordingJudge(WordCountJudge):
    def __init__(self):
        self.responses = []

    def score(self, prompts, responses):
        self.responses.extend(responses)
        return super().score(prompts, responses)


def test_the_policy_samples_after_the_good_token_and_nothing_judged_holds_one(
    model_dir, tokenizer, tmp_path, monkeypatch
):
    add_control_tokens(tokenizer, ["<|good|>", "<|bad|>"])
    good, bad = control_token_ids(tokenizer, ["<|good|>", "<|bad|>"])
    policy, reference = load_model(model_dir), load_model(model_dir)
    fit_embeddings(policy, tokenizer)

    def favour_control_tokens(module, inputs, logits):  # without the ban they would be drawn
        boost = torch.zeros(logits.shape[-1])
        boost[[good, bad]] = 50.0
        return logits + boost

    policy.get_output_embeddings().register_forward_hook(favour_control_tokens)
    sampled, scored = [], []
    real_sample, real_logps = evaluator_module.sample_responses, evaluator_module.response_logps

    def sample(model, tok, prompt_ids, **kwargs):
        samples = real_sample(model, tok, prompt_ids, **kwargs)
        sampled.append((model, [list(p) for p in prompt_ids], samples.response_ids))
        return samples

    def logps(model, prompt_ids, *args):
        scored.append((model, [list(p) for p in prompt_ids]))
        return real_logps(model, prompt_ids, *args)

    monkeypatch.setattr(evaluator_module, "sample_responses", sample)
    monkeypatch.setattr(sampling_cache, "sample_responses", sample)  # pi_ref's samples
    monkeypatch.setattr(evaluator_module, "response_logps", logps)
    judge = RecordingJudge()
    evaluator = Evaluator(
        EVAL_CFG,
        judge,
        tokenizer,
        reference,
        {"validation": PROMPTS[:6]},
        tmp_path,
        baseline_fingerprint="pi_ref",
        control_ids=[good, bad],
    )
    metrics = evaluator.evaluate(policy, "validation", step=0, seed=1)
    assert np.isfinite(metrics["win_rate"])
    by_policy = [p for m, p, _ in sampled if m is policy]
    by_reference = [p for m, p, _ in sampled if m is reference]
    assert by_policy and all(ids[-1] == good for ids in by_policy[0])
    assert by_reference and all(good not in ids for ids in by_reference[0])
    assert [ids[-1] == good for m, p in scored for ids in p[:1]] == [m is policy for m, _ in scored]
    assert judge.responses and not any("<|" in text for text in judge.responses)
    drawn = [ids for m, _, responses in sampled if m is policy for ids in responses]
    assert drawn and not any({good, bad} & set(ids) for ids in drawn)
