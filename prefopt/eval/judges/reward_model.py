"""A sequence-classification reward model (any hub id or local path) as a pointwise judge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from prefopt.eval.judges.base import Judge

INPUT_FORMATS = ("concat", "pair", "chat")


def load_reward_model(name_or_path: str, trust_remote_code: bool = False, dtype=torch.float32):
    """Tokenizer and single-output ``AutoModelForSequenceClassification`` with a pad token set."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, num_labels=1, trust_remote_code=trust_remote_code, dtype=dtype
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


class RewardModelJudge(Judge):
    """Pointwise judge r(x, y) = the model's single logit on the prompt and response.

    ``input_format``: "concat" scores the text prompt + separator + response, "pair" passes them as
    a text pair (cross-encoder reward models such as DeBERTa ones), "chat" applies the tokenizer's
    chat template to a user turn (prompt) and an assistant turn (response).
    """

    pointwise = True

    def __init__(
        self,
        name_or_path: str,
        *,
        input_format: str = "concat",
        separator: str = " ",
        batch_size: int = 32,
        max_length: int = 512,
        device: str = "cpu",
        trust_remote_code: bool = False,
        name: str | None = None,
    ):
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
        self.name = name or f"reward_model:{name_or_path}"
        self.input_format = input_format
        self.separator = separator
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = torch.device(device)
        self.tokenizer, self.model = load_reward_model(str(name_or_path), trust_remote_code)
        self.tokenizer.padding_side = "right"
        self.tokenizer.truncation_side = "left"
        self.model.to(self.device).eval()

    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenized, right-padded batch of (prompt, response) in this judge's input format."""
        kwargs = dict(
            padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        if self.input_format == "pair":
            return self.tokenizer(list(prompts), list(responses), **kwargs)
        if self.input_format == "chat":
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                    tokenize=False,
                )
                for p, r in zip(prompts, responses, strict=True)
            ]
            return self.tokenizer(texts, **kwargs)
        texts = [p + self.separator + r for p, r in zip(prompts, responses, strict=True)]
        return self.tokenizer(texts, **kwargs)

    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Differentiable rewards (N,) fp32 for one batch (used by training and scoring)."""
        batch = {k: v.to(self.device) for k, v in self.encode(prompts, responses).items()}
        return self.model(**batch).logits[:, 0].float()  # (N,)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        self.model.eval()
        out = [
            self.rewards(prompts[i : i + self.batch_size], responses[i : i + self.batch_size]).cpu()
            for i in range(0, len(prompts), self.batch_size)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros(0)
