"""Pre-training a small causal LM from scratch on samples of a task's language (pi_ref), and
fine-tuning one the same way on demonstrations (SFT).

Each step draws a fresh batch of (prompt, response) pairs and minimises the mean next-token
negative log-likelihood of the response tokens (EOS included), prompt tokens being context only:

    L = - sum_{i,t} m_it log p(y_it | x_i, y_i,<t) / sum_{i,t} m_it

with AdamW and a learning rate that warms up linearly for 5% of the steps, then decays linearly to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from prefopt import console
from prefopt.models.logprobs import build_batch, token_logps

# (batch size) -> (prompts, responses) as text
BatchSampler = Callable[[int], tuple[list[str], list[str]]]


def build_gpt2(
    tokenizer: PreTrainedTokenizerFast, *, n_layer: int, n_embd: int, n_head: int, n_positions: int
) -> GPT2LMHeadModel:
    """A GPT-2 without dropout (so that pi and a cached pi_ref agree) sized for the tokenizer."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def pretrain(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    sample_batch: BatchSampler,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    progress: bool = True,
    desc: str = "pre-training pi_ref",
) -> list[float]:
    """Train ``model`` in place; return the loss of every step (``desc`` names the progress bar)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup + 1)))
    )
    model.train()
    losses = []
    bar = console.progress(range(steps), desc=desc, enabled=progress)
    for _ in bar:
        prompts, responses = sample_batch(batch_size)
        prompt_ids = tokenizer(prompts)["input_ids"]
        response_ids = [r + [tokenizer.eos_token_id] for r in tokenizer(responses)["input_ids"]]
        batch = build_batch(prompt_ids, response_ids, tokenizer.pad_token_id)
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits  # (B, T, V)
        mask = batch["response_mask"][:, 1:]  # (B, T-1)
        loss = -(token_logps(logits, batch["input_ids"]) * mask).sum() / mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return losses
