"""Per-sequence log-probs: the fast path (LM head on response positions only) equals the full path."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from prefopt.models.logprobs import build_batch, sequence_logps, token_logps


def _models():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_layer=2, n_embd=32, n_head=2))
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    return {"gpt2": gpt2, "llama": llama}


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_fast_path_equals_full_logits(name):
    model = _models()[name].eval()
    batch = build_batch([[3, 4, 5], [6, 7]], [[8, 9, 1], [10, 1]], pad_id=0)
    logps, lengths = sequence_logps(model, **batch)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = (token_logps(logits, batch["input_ids"]) * batch["response_mask"][:, 1:]).sum(-1)
    torch.testing.assert_close(logps, expected, atol=1e-5, rtol=1e-5)
    assert lengths.tolist() == [3, 2]
    by_hand = torch.log_softmax(model(torch.tensor([[6, 7, 10, 1]])).logits[0].double(), -1)
    assert logps[1].item() == pytest.approx(by_hand[1, 10].item() + by_hand[2, 1].item(), abs=1e-5)


def test_gradients_match_full_path():
    model = _models()["gpt2"].eval()  # dropout off: both paths see the same network
    batch = build_batch([[3, 4]], [[5, 6, 1]], pad_id=0)
    sequence_logps(model, **batch)[0].sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"]).logits
    (token_logps(logits, batch["input_ids"]) * batch["response_mask"][:, 1:]).sum().backward()
    for a, p in zip(fast, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, atol=1e-5, rtol=1e-4)
