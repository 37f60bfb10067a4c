"""The benchmark's pieces that need no TRL: the shared workload, the timing rule, prefopt's side."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from measure import steady_throughput, summarise
from workload import (
    PRESETS,
    Workload,
    batch_order,
    flops_per_token,
    make_pairs,
    pair_tokens,
    prefopt_config,
    prepare,
    tokens_per_step,
)

from prefopt.trainer.batching import epoch_order

TINY = Workload(
    n_layer=1,
    n_embd=16,
    n_head=2,
    vocab_size=64,
    prompt_words=(2, 5),
    response_words=(1, 4),
    batch_size=4,
    steps=3,
    reference_batch_size=8,
)


def test_steady_throughput_times_steps_after_the_first():
    # Steps end at 1, 3, 4, 7 s with 10, 20, 30, 40 tokens: steps 2..4 hold 90 tokens in 6 s.
    result = steady_throughput([1.0, 3.0, 4.0, 7.0], [10, 20, 30, 40])
    assert result["timed_steps"] == 3
    assert result["timed_tokens"] == 90
    assert result["tokens_per_second"] == pytest.approx(15.0)
    assert result["seconds_per_step"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("ends", "tokens"), [([1.0], [5]), ([1.0, 2.0], [5]), ([2.0, 2.0], [5, 5])]
)
def test_steady_throughput_rejects_bad_input(ends, tokens):
    with pytest.raises(ValueError):
        steady_throughput(ends, tokens)


def test_summarise_median_and_spread():
    # median 4, spread (6 - 2) / 4 = 1.0
    result = summarise([6.0, 2.0, 4.0])
    assert result["median"] == 4.0
    assert result["spread"] == pytest.approx(1.0)


def test_pair_tokens_counts_prompt_twice_and_one_eos_per_response():
    pair = {"prompt": "w1 w2 w3", "chosen": " w4 w5", "rejected": " w6"}
    assert pair_tokens(pair) == 2 * 3 + (2 + 1) + (1 + 1)


def test_pairs_tokenize_like_trl_concatenation(tmp_path):
    """prompt + response as one string gives the prompt's ids then the response's (TRL's way)."""
    from transformers import AutoTokenizer

    prepare(tmp_path, TINY)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    for pair in make_pairs(TINY):
        prompt = tokenizer(pair["prompt"], add_special_tokens=False)["input_ids"]
        joined = tokenizer(pair["prompt"] + pair["chosen"] + tokenizer.eos_token)["input_ids"]
        chosen = tokenizer(pair["chosen"], add_special_tokens=False)["input_ids"]
        assert joined == prompt + chosen + [tokenizer.eos_token_id]
        assert tokenizer.unk_token_id not in joined


def test_batches_follow_prefopt_order_and_cover_every_pair():
    pairs = make_pairs(TINY)
    assert len(pairs) == TINY.steps * TINY.batch_size
    assert batch_order(TINY) == epoch_order(len(pairs), TINY.seed, 0)
    per_step = tokens_per_step(TINY)
    assert len(per_step) == TINY.steps
    assert sum(per_step) == sum(pair_tokens(p) for p in pairs)


@pytest.mark.parametrize(
    ("work", "reference", "lora"),
    [
        (TINY, "frozen_copy", False),
        (replace(PRESETS["tiny_gpu"], steps=3), "frozen_copy", False),
        (TINY, "lora_disabled", True),
    ],
    ids=["gpt2", "llama", "gpt2_lora"],
)
def test_prefopt_side_trains_the_counted_tokens(tmp_path, work, reference, lora):
    """A tiny prefopt run: tokens per step as the workload counts them, step-0 DPO loss log 2,
    throughput over steps 2..S by both clocks."""
    from bench import Config, run_one

    prepare(tmp_path, work)
    result = run_one(Config("tiny", "prefopt", reference, lora=lora), work, tmp_path, tmp_path)
    assert result["tokens"] == tokens_per_step(work)
    assert len(result["step_ends"]) == len(result["step_ends_cpu"]) == work.steps
    assert result["timed_tokens"] == sum(tokens_per_step(work)[1:])
    assert result["tokens_per_second"] > 0 and result["tokens_per_cpu_second"] > 0
    assert result["step0_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert result["setup_seconds"] > 0
    assert result["steps_gpu_peak_mib"] is None  # on a CPU


def test_gpu_workload_is_a_llama_of_about_0_37b_parameters():
    flops = flops_per_token(PRESETS["gpu"])
    # embeddings 32000 x 1024 twice (untied); a layer: 4 x 1024^2 attention, 3 x 1024 x 2816 MLP,
    # two norms of 1024; the final norm 1024
    layer = 4 * 1024**2 + 3 * 1024 * 2816 + 2 * 1024
    assert flops["parameters"] == 2 * 32000 * 1024 + 24 * layer + 1024
    assert flops["n"] == flops["parameters"] - 32000 * 1024
    assert flops["policy"] == 6 * flops["n"] and flops["reference"] == 2 * flops["n"]
    assert PRESETS["gpu"].max_length == 128 + 255 + 1  # 384 tokens per sequence
    gpt2 = flops_per_token(TINY)  # tied embeddings: the matrix counts once, as the LM head
    assert gpt2["n"] == gpt2["parameters"]


def test_bf16_peak_by_device_name():
    from bench import bf16_peak

    assert bf16_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert bf16_peak("NVIDIA H200") == 989e12
    assert bf16_peak("NVIDIA H200 NVL") == 835e12
    assert bf16_peak("Tesla T4") is None


def test_trl_side_builds_the_same_job(tmp_path):
    """Needs TRL (the bench extra): the config TRL gets is fp32 with prefopt's optimiser."""
    pytest.importorskip("trl")
    from trl_side import dpo_config

    config = dpo_config(TINY, tmp_path, precompute=True, loss_type="sigmoid", beta=0.1)
    assert config.bf16 is False
    assert config.precompute_ref_log_probs is True
    assert config.per_device_train_batch_size == TINY.batch_size
    assert config.learning_rate == TINY.lr
    assert config.optim == "adamw_torch"


def test_each_configuration_is_a_record_the_run_config_follows(tmp_path):
    """Every configuration a command runs is a Config; prefopt's compose into its run config."""
    from bench import COMPILED, CONFIGS, RATIOS, SWEEP, configurations

    named = {
        *SWEEP,
        *configurations(COMPILED),
        *(n for r in RATIOS.values() for n in configurations(r)),
    }
    assert named <= set(CONFIGS) and all(name == CONFIGS[name].name for name in CONFIGS)
    assert configurations(RATIOS["throughput"]) == [
        "prefopt_frozen_copy", "trl_default", "prefopt_cached", "trl_precompute"
    ]  # fmt: skip
    every_step = [name for name, config in CONFIGS.items() if config.reference_every_step]
    assert every_step == ["prefopt_frozen_copy", "trl_default", "prefopt_lora_disabled"]
    for config in CONFIGS.values():
        if config.tool != "prefopt":
            continue
        cfg = prefopt_config(TINY, tmp_path, tmp_path, config.overrides())
        assert (cfg.trainer.reference, cfg.model.lora.enabled, cfg.trainer.compile) == (
            config.reference,
            config.lora,
            config.compile,
        )
        assert (cfg.data.max_length, cfg.trainer.max_steps, cfg.loss.beta) == (
            TINY.max_length,
            TINY.steps,
            TINY.beta,
        )


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_fits_its_model_context(tmp_path, preset):
    """The data limits of each preset's run config pass prefopt's check against the model's
    positions (the workload's model has max(128, longest sequence))."""
    from prefopt.data import check_lengths_fit_context

    work = PRESETS[preset]
    cfg = prefopt_config(work, tmp_path, tmp_path)
    check_lengths_fit_context(cfg.data, max(128, work.max_length), "the workload's model")
    assert cfg.data.max_length == work.max_length
