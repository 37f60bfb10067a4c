"""The config fields every built-in task shares (``SyntheticConfig``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticConfig:
    """The settings every built-in task shares: pi_ref's two stages and the preference data. A
    task's config adds its language and its gold reward's fields, and may change a default (its
    conf/task/<name>.yaml states every value a run uses)."""

    seed: int = 0
    torch_threads: int = 1
    # the base model: a GPT-2 pre-trained from scratch
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    pretrain_steps: int = 500
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-2
    # the SFT model, fine-tuned from the base model, and which of the two is pi_ref
    sft_follow_prob: float = 0.5
    sft_steps: int = 200
    sft_batch_size: int = 128
    sft_lr: float = 3e-3
    reference: str = "sft"
    # preference data
    n_validation_prompts: int = 300
    n_test_prompts: int = 500
    n_train_pairs: int = 2000
    n_eval_pairs: int = 300
    label_temperature: float = 0.25
    flip_rate: float = 0.0
    min_reward_gap: float = 0.05
    max_new_tokens: int = 48
    sampling_temperature: float = 1.0
    sampling_batch_size: int = 256
