"""The benchmark's pieces that need no TRL: the shared workload, the timing rule, the FLOP counts,
the matrix-product ceiling, the report's rows, prefopt's side."""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import pytest
import torch
from ceiling import gemm_shapes, matmul_rate
from flops import flops_per_token, required_per_token
from measure import steady_throughput, summarise
from workload import (
    PRESETS,
    Workload,
    batch_order,
    make_pairs,
    pair_response_tokens,
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
    assert pair_response_tokens(pair) == (2 + 1) + (1 + 1)


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
    assert flops["n_blocks"] == 24 * (4 * 1024**2 + 3 * 1024 * 2816)  # the blocks' matrices
    assert (flops["head"], flops["hidden"], flops["widest"]) == (32000 * 1024, 1024, 32000)
    # every pair: 128 prompt and 255 + EOS response tokens per sequence
    assert flops["response_share"] == pytest.approx(2 * 256 / (2 * 128 + 2 * 256))
    assert PRESETS["gpu"].max_length == 128 + 255 + 1  # 384 tokens per sequence
    gpt2 = flops_per_token(TINY)  # tied embeddings: the matrix counts once, as the LM head
    assert gpt2["n"] == gpt2["parameters"]


def test_required_flops_by_hand():
    """TINY's GPT-2: one block of width 16 (attention 16 x 48 and 16 x 16, MLP 16 x 64 and 64 x
    16), a tied 64 x 16 LM head read on the response positions of the timed steps 2..3 only."""
    flops = flops_per_token(TINY)
    blocks, head = 16 * 48 + 16 * 16 + 16 * 64 + 64 * 16, 64 * 16
    assert (flops["n_blocks"], flops["head"]) == (blocks, head)
    pairs, order = make_pairs(TINY), batch_order(TINY)[TINY.batch_size :]  # steps 2..3
    responses = sum(
        len(pairs[i]["chosen"].split()) + len(pairs[i]["rejected"].split()) + 2 for i in order
    )
    prompts = sum(2 * len(pairs[i]["prompt"].split()) for i in order)
    share = responses / (prompts + responses)
    assert flops["response_share"] == pytest.approx(share)
    assert share == pytest.approx(
        sum(tokens_per_step(TINY, pair_response_tokens)[1:]) / sum(tokens_per_step(TINY)[1:])
    )
    forward = 2 * (blocks + head * share)  # FLOPs of one forward per token
    assert required_per_token(flops, reference=False, lora=False) == pytest.approx(3 * forward)
    assert required_per_token(flops, reference=True, lora=False) == pytest.approx(4 * forward)
    assert required_per_token(flops, reference=False, lora=True) == pytest.approx(2 * forward)
    assert required_per_token(flops, reference=True, lora=True) == pytest.approx(3 * forward)
    assert 3 * forward < flops["policy"]  # below 6N: the head skips prompt positions


def test_matmul_rate_is_positive_on_tiny_shapes():
    result = matmul_rate(8, 4, 6, torch.float32, "cpu", repeats=2, min_seconds=1e-4)
    assert result["shape"] == [8, 4, 6] and result["calls"] >= 1
    assert result["flops_per_second"] == pytest.approx(2 * 8 * 4 * 6 / result["seconds"])
    assert result["flops_per_second"] > 0


def test_matmul_rate_counts_2mnk_flops_per_product_with_a_fake_timer():
    """A clock that advances 0.5 s per reading: every timed sample lasts 0.5 s, so a 2 s sample
    takes 4 products of 0.125 s each."""
    readings = iter(0.5 * i for i in range(1000))
    result = matmul_rate(
        8, 4, 6, torch.float32, "cpu", repeats=3, min_seconds=2.0, clock=lambda: next(readings)
    )
    assert result["calls"] == 4
    assert result["seconds"] == pytest.approx(0.125)
    assert result["flops_per_second"] == pytest.approx(2 * 8 * 6 * 4 / 0.125)


def test_gemm_shapes_take_the_timed_steps_mean_tokens_and_the_widest_matrix():
    flops = flops_per_token(PRESETS["tiny_gpu"])  # vocabulary 512, wider than the MLP's 176
    shapes = gemm_shapes(flops, [10, 20, 30])  # steps 2..3: 25 tokens on average
    assert shapes == {"largest_gemm": (25, 64, 512), "square_2048": (2048, 2048, 2048)}


def test_summary_row_reports_both_counts_against_each_ceiling():
    """Two repeats at 1000 and 3000 tokens/s (median 2000) of the cached configuration: 6N = 6e6
    FLOPs per token, required 6 x (0.7e6 + 0.4e6 x 0.5) = 5.4e6; products at 24 GFLOP/s (both
    repeats) and 40 / 60 GFLOP/s (median 50); a 120 GFLOP/s peak."""
    from bench import CONFIGS
    from report import SUMMARY_COLUMNS, summary_row, table

    flops = {
        "policy": 6e6,
        "reference": 2e6,
        "n_blocks": 0.7e6,
        "head": 0.4e6,
        "response_share": 0.5,
    }
    results = [
        {
            "tokens_per_second": tokens, "tokens_per_cpu_second": tokens, "peak_rss_mib": 900.0,
            "setup_seconds": 1.0, "setup_gpu_peak_mib": None, "steps_gpu_peak_mib": None,
            "ceiling": {
                gemm: {"flops_per_second": rate}
                for gemm, rate in (("largest_gemm", 24e9), ("square_2048", square))
            },
        }
        for tokens, square in ((1000.0, 40e9), (3000.0, 60e9))
    ]  # fmt: skip
    config = CONFIGS["prefopt_cached"]
    row = summary_row(config, results, flops, peak=120e9)
    assert row["required_flops_per_token"] == pytest.approx(5.4e6)
    assert row["flops_per_second"] == pytest.approx({"conventional_6n": 12e9, "required": 10.8e9})
    assert row["fraction_of"]["largest_gemm"] == pytest.approx(
        {"conventional_6n": 0.5, "required": 0.45}
    )
    assert row["fraction_of"]["square_2048"] == pytest.approx(
        {"conventional_6n": 0.24, "required": 0.216}
    )
    assert row["mfu"] == pytest.approx(0.1)
    lines = table(SUMMARY_COLUMNS, {config.name: row})
    for header in (
        "GFLOP/s (6N / required)",
        "of largest-GEMM rate",
        "of 2048^3 rate",
        "of bf16 peak (MFU)",
    ):
        assert header in lines[0]
    assert "| 12.0 / 10.8 | 50% / 45% | 24% / 22% | 10.0% / 9.0% |" in lines[2]
    cpu = summary_row(config, results, flops, peak=None)  # no datasheet peak
    assert cpu["mfu"] is None and cpu["fraction_of"]["bf16_peak"] is None
    assert "| 50% / 45% | 24% / 22% | - |" in table(SUMMARY_COLUMNS, {config.name: cpu})[2]


def test_bf16_peak_by_device_name():
    from report import bf16_peak

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


def test_scripts_take_their_options_from_one_table(monkeypatch):
    """bench.py's and the profilers' command lines come from OPTIONS, each with its own defaults."""
    from bench import parse_args

    monkeypatch.setattr(sys, "argv", ["profile_ops.py"])
    args = parse_args("doc", ["--steps", "--threads", "--top", "--out"], steps=4, threads=1)
    assert (args.steps, args.threads, args.top, args.out) == (4, 1, 12, "results/performance")
    monkeypatch.setattr(sys, "argv", ["bench.py", "memory", "--compile", "--batch-size", "2"])
    args = parse_args("doc", ["command", "--batch-size", "--steps", "--compile"])
    assert (args.command, args.batch_size, args.steps, args.compile) == ("memory", 2, 12, True)
