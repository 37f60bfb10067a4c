"""The shared trainer on a tiny model: loss values, reference modes, accumulation, resume, errors."""

import gc
import json
import math
import weakref

import pytest
import torch
from tiny import interrupt_train_step, make_config
from transformers import AutoModelForCausalLM

from prefopt.errors import ConfigError
from prefopt.losses import PairedLogps, UnpairedLogps, build_loss_from_config
from prefopt.trainer import data_setup, model_setup
from prefopt.trainer import run as run_module
from prefopt.trainer.batching import collate
from prefopt.trainer.data_setup import prepare_data
from prefopt.trainer.loop import NonFiniteError
from prefopt.trainer.reference import CachedReference, LiveReference
from prefopt.trainer.reference_tables import compute_table
from prefopt.trainer.setup import Resolved
from prefopt.trainer.step import forward_loss

FIVE_LOSSES = [
    {"name": "dpo", "beta": 0.1},
    {"name": "ipo", "beta": 0.1},
    {"name": "kto", "beta": 0.1},
    {"name": "orpo", "beta": 0.2},
    {"name": "simpo", "beta": 2.0, "gamma": 0.5},
]


def _independent_logps(model, prompt, response):
    """Sum of response-token log-probs computed one sequence at a time, without prefopt helpers."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(ids).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.double(), dim=-1)
    return sum(logp[len(prompt) + t - 1, tok].item() for t, tok in enumerate(response))


def _data(tiny_root, tmp_path, loss):
    cfg = make_config(tiny_root, tmp_path / "cache", loss)
    loss_fn = build_loss_from_config(cfg.loss)
    model = str(tiny_root / "model")
    resolved = Resolved(model, model, model, dict(cfg.data), None)
    return cfg, loss_fn, prepare_data(cfg, resolved, loss_fn, tmp_path)


@pytest.mark.parametrize("loss", FIVE_LOSSES, ids=lambda c: c["name"])
def test_step_loss_equals_plugin_on_independent_logps(tiny_root, tmp_path, loss):
    cfg, loss_fn, data = _data(tiny_root, tmp_path, loss)
    policy = AutoModelForCausalLM.from_pretrained(tiny_root / "model")
    reference = AutoModelForCausalLM.from_pretrained(tiny_root / "model")
    policy.eval()
    items = data.train_items
    batch = collate(items, range(4), data.tokenizer.pad_token_id)
    out, *_ = forward_loss(policy, loss_fn, LiveReference(reference), batch)
    first = [_independent_logps(policy, it.prompt_ids, it.first_ids) for it in items[:4]]
    second = [_independent_logps(policy, it.prompt_ids, it.second_ids) for it in items[:4]]
    ref_first = [_independent_logps(reference, it.prompt_ids, it.first_ids) for it in items[:4]]
    ref_second = [_independent_logps(reference, it.prompt_ids, it.second_ids) for it in items[:4]]
    len_first = torch.tensor([len(it.first_ids) for it in items[:4]])
    t = lambda xs: torch.tensor(xs, dtype=torch.float32)  # noqa: E731
    if loss_fn.data_format == "paired":
        expected = loss_fn(
            PairedLogps(
                t(first),
                t(second),
                len_first,
                torch.tensor([len(it.second_ids) for it in items[:4]]),
                t(ref_first),
                t(ref_second),
            )
        )
    else:
        expected = loss_fn(
            UnpairedLogps(
                t(first),
                len_first,
                torch.tensor([it.desirable for it in items[:4]]),
                t(ref_first),
                t(second),
                t(ref_second),
            )
        )
    torch.testing.assert_close(out.losses, expected.losses, atol=1e-4, rtol=1e-4)
    if loss["name"] == "dpo":  # policy == reference and dropout is off: the first DPO loss is log 2
        torch.testing.assert_close(out.losses, torch.full((4,), math.log(2)), atol=1e-6, rtol=0)


def test_reference_modes_agree(tiny_root, tmp_path):
    from prefopt.models.loading import apply_lora, load_causal_lm

    cfg, loss_fn, data = _data(tiny_root, tmp_path, {"name": "dpo", "beta": 0.1})
    items, pad = data.train_items[:12], data.tokenizer.pad_token_id
    frozen = LiveReference(load_causal_lm(tiny_root / "model", cfg.model))
    lora_policy = apply_lora(load_causal_lm(tiny_root / "model", cfg.model), cfg.model.lora)
    with torch.no_grad():  # make the adapter non-trivial, so "disabled" has something to disable
        for name, param in lora_policy.named_parameters():
            if "lora_B" in name:
                param.normal_()
    adapter_off = LiveReference(lora_policy, adapter_off=True)
    cached = CachedReference(
        compute_table(frozen, items, pad, 5, torch.device("cpu"), "test")["logps"]
    )
    batch = collate(items, range(12), pad)
    a, b, c = frozen.logps(batch), adapter_off.logps(batch), cached.logps(batch)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(
        lora_policy(batch["input_ids"]).logits, frozen.model(batch["input_ids"]).logits
    )


def _params_after_one_step(tiny_root, tmp_path, micro):
    cfg = make_config(
        tiny_root,
        tmp_path / "cache",
        {"name": "dpo", "beta": 0.5},
        optimizer="sgd",
        lr=1.0,
        max_grad_norm=0,
        micro_batch_size=micro,
        max_steps=1,
    )
    cfg.eval.at_start = False
    run_module.run_training(cfg, tmp_path / f"run_{micro}")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / f"run_{micro}" / "policy")
    return torch.cat([p.flatten() for p in model.parameters()])


def test_gradient_accumulation_matches_full_batch(tiny_root, tmp_path):
    full = _params_after_one_step(tiny_root, tmp_path, micro=8)
    accumulated = _params_after_one_step(tiny_root, tmp_path, micro=2)
    base = AutoModelForCausalLM.from_pretrained(tiny_root / "model")
    start = torch.cat([p.flatten() for p in base.parameters()])
    assert (full - start).abs().max() > 1e-4  # the step moved the weights
    torch.testing.assert_close(full, accumulated, atol=1e-6, rtol=1e-5)


def test_resume_after_interruption_matches_straight_run(tiny_root, tmp_path, monkeypatch):
    loss = {"name": "dpo", "beta": 0.1}
    straight = run_module.run_training(
        make_config(tiny_root, tmp_path / "cache", loss), tmp_path / "straight"
    )
    interrupt_train_step(monkeypatch, run_module.Trainer, 7)  # after the checkpoint of step 4
    with pytest.raises(KeyboardInterrupt):
        run_module.run_training(make_config(tiny_root, tmp_path / "cache", loss), tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    resumed = run_module.run_training(
        make_config(tiny_root, tmp_path / "cache", loss), tmp_path / "cut"
    )
    for key in ("final", "best", "steps", "tokens_seen"):
        assert resumed[key] == straight[key], key
    rows = lambda d: [  # noqa: E731
        json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows("cut") == rows("straight")
    again = run_module.run_training(
        make_config(tiny_root, tmp_path / "cache", loss), tmp_path / "cut"
    )
    assert again["status"] == "finished"


def test_lora_run_saves_a_plain_model(tiny_root, tmp_path):
    cfg = make_config(
        tiny_root,
        tmp_path / "cache",
        {"name": "dpo", "beta": 0.1},
        reference="lora_disabled",
        max_steps=2,
    )
    cfg.model.lora.enabled = True
    cfg.model.lora.merge_on_save = True
    summary = run_module.run_training(cfg, tmp_path / "lora")
    assert summary["status"] == "finished"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "lora" / "policy")
    assert not any("lora" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.loss.update(name="no_such_loss"), "no_such_loss"),
        (lambda c: c.loss.update(gamma=1.0), "gamma"),
        (lambda c: c.loss.update(beta=0.0), "beta"),
        (lambda c: c.trainer.update(reference="lora_disabled"), "lora"),
        (
            lambda c: c.update(loss={"name": "kto", "beta": 0.1}) or c.trainer.update(batch_size=1),
            "at least 2",
        ),
    ],
)
def test_bad_configuration_fails_before_work(tiny_root, tmp_path, change, message):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    change(cfg)
    with pytest.raises(ValueError, match=message):
        run_module.run_training(cfg, tmp_path / "bad")
    assert not (tmp_path / "cache").exists()  # nothing was loaded or computed


def test_non_finite_loss_stops_with_a_message(tiny_root, tmp_path, monkeypatch):
    import prefopt.trainer.step as step_module

    real = step_module.sequence_logps

    def poisoned(*args, **kwargs):
        logps, lengths = real(*args, **kwargs)
        return logps * float("nan"), lengths

    monkeypatch.setattr(step_module, "sequence_logps", poisoned)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    cfg.eval.at_start = False
    with pytest.raises(NonFiniteError, match="step 0"):
        run_module.run_training(cfg, tmp_path / "nan")
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["error"]
    assert json.loads((tmp_path / "nan" / "failed_batch.json").read_text())["item_indices"]


def test_a_different_reference_model_is_used(tiny_root, tmp_path):
    from tiny import build_model_dir

    other = build_model_dir(tmp_path / "other_model", seed=1)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=1)
    cfg.model.reference_name_or_path = str(other)
    summary = run_module.run_training(cfg, tmp_path / "run")
    start = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["step"] == 0
    ][0]
    assert summary["status"] == "finished"
    assert abs(start["loss"] - math.log(2)) > 1e-3  # pi != pi_ref at the start
    assert start["reward_margin"] != 0.0


def test_validation_is_held_out_when_the_data_has_none(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=2)
    cfg.data.splits = {"train": "train.jsonl"}
    summary = run_module.run_training(cfg, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["validation"]["held_out_from"] == "train"
    assert summary["final"]["validation"]["reward_accuracy"] >= 0.0


@pytest.mark.parametrize("test_at", ["best_and_final", "every"])
def test_test_split_scored_at_the_best_and_final_checkpoints(tiny_root, tmp_path, test_at):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    cfg.data.splits = {
        "train": "train.jsonl",
        "validation": "validation.jsonl",
        "test": "validation.jsonl",
    }
    cfg.eval.test_at = test_at
    summary = run_module.run_training(cfg, tmp_path / "run")
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    test_steps = [r["step"] for r in rows if r["split"] == "test"]
    best = summary["best"]
    assert best["test"]["step"] == best["step"] and summary["final"]["test"]["step"] == 12
    if test_at == "best_and_final":
        assert sorted(test_steps) == sorted({best["step"], 12})
    else:
        assert test_steps == [r["step"] for r in rows if r["split"] == "validation"]
    # the test split is the validation file here: the same weights give the same held-out loss
    assert best["test"]["loss"] == pytest.approx(best["validation"]["loss"], abs=1e-5)
    from safetensors.torch import load_file

    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "policy").state_dict()
    last = load_file(str(tmp_path / "run" / "checkpoints" / "step_0000012" / "model.safetensors"))
    for name, tensor in last.items():  # the saved policy is the final model, not the best one
        torch.testing.assert_close(saved[name], tensor)


def test_a_tuning_run_never_scores_the_test_split(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=4)
    cfg.data.splits = {
        "train": "train.jsonl",
        "validation": "validation.jsonl",
        "test": "validation.jsonl",
    }
    cfg.eval.test_at = "never"
    summary = run_module.run_training(cfg, tmp_path / "run")
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["status"] == "finished" and {r["split"] for r in rows} == {"train", "validation"}
    assert summary["best"]["test"] == {}


def test_cached_reference_loads_no_reference_model_once_its_caches_exist(
    tiny_root, tmp_path, monkeypatch
):
    from prefopt.trainer import model_setup

    loads = []  # weak references to every pi_ref loaded
    original = model_setup.load_frozen_reference

    def counting(*args, **kwargs):
        model = original(*args, **kwargs)
        loads.append(weakref.ref(model))
        return model

    monkeypatch.setattr(model_setup, "load_frozen_reference", counting)
    alive_in_training = []
    fit = run_module.Trainer.fit

    def watched_fit(self, stop):
        gc.collect()
        alive_in_training.append([ref() is not None for ref in loads])
        return fit(self, stop)

    monkeypatch.setattr(run_module.Trainer, "fit", watched_fit)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=2)
    assert cfg.trainer.reference == "cached" and not cfg.eval.generate
    first = run_module.run_training(cfg, tmp_path / "first")
    assert len(loads) == 1  # pi_ref fills the caches of train and validation...
    assert alive_in_training[0] == [False]  # ...and is freed before training starts
    second = run_module.run_training(cfg, tmp_path / "second")
    assert len(loads) == 1  # every cache hits: no reference model in memory
    assert second["final"] == first["final"]
    cfg.trainer.reference = "frozen_copy"
    run_module.run_training(cfg, tmp_path / "frozen")
    assert len(loads) == 2  # a frozen copy is loaded whatever the caches hold
    assert alive_in_training[-1] == [False, True]
    cfg.trainer.reference = "cached"
    cfg.model.lora.enabled = True
    cfg.cache_dir = str(tmp_path / "lora_cache")
    lora = run_module.run_training(cfg, tmp_path / "lora")
    assert len(loads) == 2  # LoRA on pi_ref: the cache is filled with the adapter off, no copy
    assert lora["status"] == "finished"


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_root, tmp_path, monkeypatch):
    """trainer.compile: the same losses and held-out metrics as eager (compiling takes ~30 s)."""
    compiled_calls = []
    original_compile = torch.compile

    def counting_compile(module, **kwargs):
        compiled_calls.append(type(module).__name__)
        return original_compile(module, **kwargs)

    monkeypatch.setattr(torch, "compile", counting_compile)
    loss = {"name": "dpo", "beta": 0.1}
    eager = run_module.run_training(
        make_config(tiny_root, tmp_path / "cache", loss, max_steps=3), tmp_path / "eager"
    )
    cfg = make_config(tiny_root, tmp_path / "cache", loss, max_steps=3)
    cfg.trainer.compile = True
    compiled = run_module.run_training(cfg, tmp_path / "compiled")
    assert compiled_calls == ["GPT2Model"]  # the transformer body, once
    for run in ("eager", "compiled"):  # the saved policy holds plain parameter names
        model = AutoModelForCausalLM.from_pretrained(tmp_path / run / "policy")
        assert not any("_orig_mod" in name for name in model.state_dict())
    for key in ("loss", "reward_accuracy", "reward_margin", "chosen_logps"):
        a, b = eager["final"]["validation"][key], compiled["final"]["validation"][key]
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), key
    assert compiled["final"]["validation"]["loss"] != pytest.approx(math.log(2), abs=1e-4)


@pytest.mark.parametrize(
    ("trainer", "message"),
    [({"batch_size": 1000}, "more than the"), ({"warmup": 500}, "longer than the run")],
    ids=["batch_over_data", "warmup_over_run"],
)
def test_settings_that_need_the_data_size_fail_before_models_load(
    tiny_root, tmp_path, monkeypatch, trainer, message
):
    def no_models(*args, **kwargs):
        raise AssertionError("models were loaded before the schedule was checked")

    monkeypatch.setattr(model_setup, "prepare_models", no_models)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, **trainer)
    with pytest.raises(ConfigError, match=message):
        run_module.run_training(cfg, tmp_path / "run")


def test_a_missing_model_directory_is_refused_before_the_data_is_read(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    cfg.model.name_or_path = str(tmp_path / "no_model")
    cfg.data.source = str(tmp_path / "no_data")  # reading it would fail with another message
    with pytest.raises(ConfigError, match=r"model.name_or_path=.*no_model.*no such directory"):
        run_module.run_training(cfg, tmp_path / "run")


def test_data_lengths_beyond_the_models_context_are_refused_before_the_data_is_read(
    tiny_root, tmp_path, monkeypatch
):
    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the lengths were checked")

    monkeypatch.setattr(data_setup, "prepare_data", no_data)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    cfg.data.max_length = 512  # the tiny model has 64 positions
    with pytest.raises(ConfigError, match=r"data.max_length=512.*64 positions"):
        run_module.run_training(cfg, tmp_path / "run")
