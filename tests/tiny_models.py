"""A tiny GPT-2 policy and a perturbed copy as pi_ref, for tests that compare with another tool."""

import copy

import torch


def policy_and_reference(tokenizer, noise: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(policy, reference): a 2-layer GPT-2 without dropout, seeded, and a copy of it whose
    weights are moved by ``noise`` times standard normal draws."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=2,
        n_embd=32,
        n_head=2,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    policy = GPT2LMHeadModel(config)
    reference = copy.deepcopy(policy)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(noise * torch.randn_like(parameter))
    return policy, reference
