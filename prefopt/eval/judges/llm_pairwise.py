"""A causal LM asked which of two responses is better, as a pairwise judge.

The template (with ``{prompt}``, ``{first}`` and ``{second}``) ends where the model should answer;
the judge reads the next-token logits of the two answer tokens ("A" for the first, "B" for the
second) and takes P(first) = sigmoid(logit_A - logit_B). Both orders are asked and averaged,

    compare(a, b) = (P(first | a, b) + P(second | b, a)) / 2,

so a constant preference for a position cancels and compare(a, b) + compare(b, a) = 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.eval.judges.base import Judge

DEFAULT_TEMPLATE = (
    "Which response answers the prompt better?\n\nPrompt: {prompt}\n\n"
    "Response A: {first}\n\nResponse B: {second}\n\nThe better response is Response"
)


class PairwiseLLMJudge(Judge):
    """Pairwise judge from a causal LM's answer-token log-probs, averaged over both orders."""

    pointwise = False

    def __init__(
        self,
        name_or_path: str,
        template: str = DEFAULT_TEMPLATE,
        *,
        answer_tokens: Sequence[str] = (" A", " B"),
        batch_size: int = 16,
        max_length: int = 1024,
        device: str = "cpu",
        trust_remote_code: bool = False,
        name: str | None = None,
    ):
        for field in ("{prompt}", "{first}", "{second}"):
            if field not in template:
                raise ValueError(f"the judge template must contain {field}; got {template!r}")
        self.name = name or f"llm_pairwise:{name_or_path}"
        self.template = template
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(
            str(name_or_path), trust_remote_code=trust_remote_code
        )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.tokenizer.truncation_side = "left"  # keep the question's end, where the answer goes
        self.model = AutoModelForCausalLM.from_pretrained(
            str(name_or_path), trust_remote_code=trust_remote_code, dtype=torch.float32
        )
        self.model.to(self.device).eval()
        if len(answer_tokens) != 2:
            raise ValueError(f"answer_tokens must be two strings, got {answer_tokens!r}")
        self.answer_ids = [self._single_token(t) for t in answer_tokens]

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"answer token {text!r} is {len(ids)} tokens for this tokenizer; pick "
                "answer_tokens that are one token each"
            )
        return ids[0]

    @torch.no_grad()
    def first_preferred(
        self, prompts: Sequence[str], first: Sequence[str], second: Sequence[str]
    ) -> np.ndarray:
        """P(the response shown first is better) (N,), one order only."""
        out = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            texts = [
                self.template.format(prompt=p, first=a, second=b)
                for p, a, b in zip(
                    prompts[start:end], first[start:end], second[start:end], strict=True
                )
            ]
            batch = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits  # (b, T, V)
            last = batch["attention_mask"].sum(-1) - 1  # (b,) last real token (right padding)
            final = logits[torch.arange(len(texts), device=self.device), last].double()  # (b, V)
            gap = final[:, self.answer_ids[0]] - final[:, self.answer_ids[1]]  # (b,)
            out.append(torch.sigmoid(gap).cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)

    def compare(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> np.ndarray:
        if not len(prompts) == len(responses_a) == len(responses_b):
            raise ValueError(
                f"lengths differ: {len(prompts)} prompts, {len(responses_a)} and "
                f"{len(responses_b)} responses"
            )
        a_first = self.first_preferred(prompts, responses_a, responses_b)  # (N,)
        b_first = self.first_preferred(prompts, responses_b, responses_a)  # (N,)
        return 0.5 * (a_first + (1.0 - b_first))
