"""The sampler: the draws of ``model.generate`` for the same seed (up to rare flips by rounding),
with finished rows leaving the batch, for GPT-2 and Llama shapes and every sampling setting."""

import numpy as np
import pytest
import torch
from conftest import PROMPTS, build_tokenizer, gpt2_config
from transformers import GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from prefopt.eval.responses import response_logps
from prefopt.models.sampling import sample_responses, sample_with_generate


def _llama(tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def _model(kind: str, tokenizer):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(tokenizer)) if kind == "gpt2" else _llama(tokenizer)
    with torch.no_grad():  # peaked next-token distributions and a strong EOS logit: mixed lengths
        model.get_output_embeddings().weight.mul_(4.0)[tokenizer.eos_token_id] *= 2.0
    return model.eval()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize(
    "settings",
    [{}, {"top_k": 4}, {"top_p": 0.25}, {"temperature": 0.6, "top_k": 6, "top_p": 0.9}],
    ids=["plain", "top_k", "top_p", "all"],
)
def test_samples_equal_generate_with_the_same_seed(kind, settings):
    tokenizer = build_tokenizer()
    model = _model(kind, tokenizer)
    prompt_ids = tokenizer(PROMPTS[:20] + [p.split(" on ")[0] for p in PROMPTS[:10]])["input_ids"]
    ours = sample_responses(
        model, tokenizer, prompt_ids, max_new_tokens=12, seed=7, batch_size=8, **settings
    )
    theirs = sample_with_generate(
        model, tokenizer, prompt_ids, max_new_tokens=12, seed=7, batch_size=8, **settings
    )
    same = sum(a == b for a, b in zip(ours.response_ids, theirs, strict=True))
    assert same >= 0.9 * len(theirs)  # all, but for rare draws flipped by rounding
    lengths = {len(r) for r in ours.response_ids}
    assert len(lengths) > 1 and max(lengths) == 12  # rows finished at different steps
    eos = tokenizer.eos_token_id
    assert ours.finished == [r[-1] == eos for r in ours.response_ids]
    assert not all(ours.finished) and any(ours.finished)


def test_same_seed_same_samples_other_seed_other_samples():
    tokenizer = build_tokenizer()
    model = _model("gpt2", tokenizer)
    prompt_ids = tokenizer(PROMPTS)["input_ids"]

    def draw(seed):
        return sample_responses(model, tokenizer, prompt_ids, max_new_tokens=10, seed=seed)

    assert draw(1).response_ids == draw(1).response_ids
    assert draw(1).response_ids != draw(2).response_ids
    assert model.training is False


def test_top_k_one_is_greedy():
    tokenizer = build_tokenizer()
    model = _model("gpt2", tokenizer)
    prompt_ids = tokenizer(PROMPTS[:6])["input_ids"]
    sampled = sample_responses(model, tokenizer, prompt_ids, max_new_tokens=8, seed=3, top_k=1)
    for prompt, response in zip(prompt_ids, sampled.response_ids, strict=True):
        ids = torch.tensor([prompt])
        for token in response:  # each token is the argmax given the prefix
            assert model(input_ids=ids).logits[0, -1].argmax().item() == token
            ids = torch.cat([ids, torch.tensor([[token]])], 1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    tokenizer = build_tokenizer()
    model = _model("gpt2", tokenizer)
    with pytest.raises(ValueError, match=message):
        sample_responses(model, tokenizer, [[3, 4]], **{"max_new_tokens": 4, "seed": 0, **settings})
    with pytest.raises(ValueError, match="at least one prompt"):
        sample_responses(model, tokenizer, [], max_new_tokens=4, seed=0)


def test_peft_policy_and_its_disabled_adapter_sample_like_the_base_model():
    from peft import LoraConfig, get_peft_model

    from prefopt.trainer.reference import AdapterDisabledModel

    tokenizer = build_tokenizer()
    prompt_ids = tokenizer(PROMPTS[:16])["input_ids"]

    def draw(model):
        return sample_responses(
            model, tokenizer, prompt_ids, max_new_tokens=10, seed=5
        ).response_ids

    base = draw(_model("llama", tokenizer))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    policy = get_peft_model(_model("llama", tokenizer), config)  # B = 0: the base model's outputs
    assert draw(policy) == base
    with torch.no_grad():
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 1.0)  # a trained adapter changes the samples...
    assert draw(policy) != base
    assert draw(AdapterDisabledModel(policy)) == base  # ...and disabling it gives pi_ref's back
    # the log-probs behind the KL: the adapter-off wrapper scores with pi_ref, not the policy
    samples = sample_responses(policy, tokenizer, prompt_ids, max_new_tokens=10, seed=6)
    pad = tokenizer.pad_token_id
    off = response_logps(AdapterDisabledModel(policy), prompt_ids, samples, pad, 8)
    on = response_logps(policy, prompt_ids, samples, pad, 8)
    reference = response_logps(_model("llama", tokenizer), prompt_ids, samples, pad, 8)
    assert np.allclose(off, reference, atol=1e-4) and not np.allclose(off, on, atol=1e-2)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_cache_that_cannot_drop_rows_keeps_them_and_gives_the_same_samples(kind, monkeypatch):
    from prefopt.models import sampling

    tokenizer = build_tokenizer()
    model = _model(kind, tokenizer)
    prompt_ids = tokenizer(PROMPTS[:20])["input_ids"]

    def draw():
        return sample_responses(
            model, tokenizer, prompt_ids, max_new_tokens=12, seed=4, batch_size=8
        ).response_ids

    dropping = draw()
    monkeypatch.setattr(sampling, "_can_drop_rows", lambda cache: False)
    kept = draw()
    assert kept == dropping
    assert len({len(r) for r in kept}) > 1  # rows finished early and stayed in the forward
