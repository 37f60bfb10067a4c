"""PPO's value model (critic): a separate model with a scalar head, trained by its own optimiser.

V_t, the value of the state (x, y_<t) before response token t, is the head applied to the hidden
state that predicts token t, so that values line up with the token log-probs of
:func:`prefopt.models.logprobs.response_token_logps` (column j: the response's j-th token). The
model is loaded with ``AutoModelForSequenceClassification`` (one label) from a directory whose
tokenizer is the policy's: the reward model trained on the run's pairs from pi_ref (InstructGPT
initialises the value function from the reward model), or pi_ref itself with a new head.

The trainer's backward fills its gradients (the PPO loss includes ``vf_coef`` times the value loss);
the model is stepped as a step hook after each optimiser step, clipped to the trainer's gradient
norm, at a constant learning rate. Checkpoints keep its weights and optimiser state.
"""

from __future__ import annotations

import math

import torch
from transformers import AutoModelForSequenceClassification

from prefopt.models.loading import disable_dropout
from prefopt.models.logprobs import response_positions


class ValueModel:
    """The critic: ``values(batch)`` (N, L), stepped by calling it as a step hook."""

    def __init__(self, model: torch.nn.Module, lr: float, max_grad_norm: float):
        if not hasattr(model, "score") or not hasattr(model, "base_model"):
            raise ValueError(
                f"{type(model).__name__} has no `score` head on a `base_model`: it cannot serve "
                "as PPO's value model"
            )
        if model.config.num_labels != 1:
            raise ValueError(
                f"a value model has one output; this one has {model.config.num_labels}"
            )
        self.model, self.max_grad_norm = model, max_grad_norm
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    @classmethod
    def load(cls, path: str, dtype: torch.dtype, device, lr: float, max_grad_norm: float):
        """The value model from ``path`` (a reward model, or a causal LM given a new head)."""
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=1, dtype=dtype
        )
        disable_dropout(model)
        return cls(model.to(device).train(), lr, max_grad_norm)

    def values(self, batch: dict) -> torch.Tensor:
        """(N, L) V_t for each response token of a collated batch (gradient on), 0 past the end."""
        rows, cols, positions, width = response_positions(batch["response_mask"])
        hidden = self.model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).last_hidden_state  # (N, T, H)
        values = self.model.score(hidden[rows, cols]).squeeze(-1).float()  # (K,)
        return values.new_zeros((batch["input_ids"].shape[0], width)).index_put(
            (rows, positions), values
        )

    @torch.no_grad()
    def rollout_values(self, batch: dict) -> torch.Tensor:
        """(N, L) values without gradient, in eval mode (the rollout's V_old)."""
        self.model.eval()
        try:
            return self.values(batch)
        finally:
            self.model.train()

    def __call__(self, trainer, row: dict) -> None:
        """Step hook: clip the gradients the step's backward left, step, clear them."""
        params = list(self.model.parameters())
        norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm or math.inf)
        if not math.isfinite(float(norm)):
            raise FloatingPointError(
                f"step {row['step']}: the value model's gradient norm is {float(norm)}"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
