"""conf/task/reviews_tiny.yaml is conf/task/reviews.yaml with its sizes made small, and nothing else."""

from omegaconf import OmegaConf

# The values reviews_tiny changes: a pi_ref and data small enough to build in seconds.
TINY_SIZES = {
    "n_layer": 1,
    "n_embd": 32,
    "pretrain_steps": 150,
    "pretrain_batch_size": 64,
    "sft_steps": 30,
    "sft_batch_size": 64,
    "n_validation_prompts": 16,
    "n_test_prompts": 32,
    "n_train_pairs": 64,
    "n_eval_pairs": 16,
    "sampling_batch_size": 128,
}


def composed(compose_config, overrides):
    cfg = compose_config(overrides, hydra=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra")
    return plain, choices


def test_reviews_tiny_composes_as_reviews_with_the_tiny_sizes(compose_config):
    tiny, tiny_choices = composed(compose_config, ["task=reviews_tiny"])
    sized = [f"task.{key}={value}" for key, value in TINY_SIZES.items()]
    full, full_choices = composed(compose_config, ["task=reviews", *sized])
    assert tiny == full
    assert tiny_choices == {**full_choices, "task": "reviews_tiny"}
    assert tiny["task"]["n_train_pairs"] == 64 and tiny["model"]["name_or_path"] == "@task"
