"""The Reference protocol: every mode of build_reference, a moving pi_ref, per-token and fresh batches."""

import gc
import random
import weakref

import pytest
import torch
from safetensors.torch import save_file
from tiny import make_config

from prefopt.models.loading import apply_lora, load_causal_lm
from prefopt.models.logprobs import (
    build_batch,
    response_token_logps,
    sequence_logps,
    token_logps,
)
from prefopt.trainer.batching import collate
from prefopt.trainer.items import TrainItem
from prefopt.trainer.reference import CachedReference, LiveReference, PiRef, build_reference
from prefopt.trainer.reference_tables import ReferenceTables, cache_key, cached_table

PAD = 0


@pytest.fixture
def model_cfg(tiny_root, tmp_path):
    return make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}).model


@pytest.fixture
def items() -> list[TrainItem]:
    """Ten items of random words of the tiny vocabulary (ids 3..20), responses of 1-6 tokens."""
    rng = random.Random(0)

    def words(n):
        return [rng.randrange(3, 21) for _ in range(n)]

    return [
        TrainItem(words(3), words(rng.randint(1, 6)), words(rng.randint(1, 6))) for _ in range(10)
    ]


def _lora_policy(tiny_root, model_cfg, scale=1.0):
    """The tiny model with a LoRA adapter whose B is random (so the adapter changes outputs)."""
    policy = apply_lora(load_causal_lm(tiny_root / "model", model_cfg), model_cfg.lora)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, scale)
    return policy


def _tables(tmp_path) -> ReferenceTables:
    return ReferenceTables(
        tmp_path / "tables", "fingerprint", "float32", PAD, 4, torch.device("cpu")
    )


def _policy_logps(policy, batch):
    with torch.no_grad():
        logps, _ = sequence_logps(
            policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
        )
    return logps


def test_every_mode_gives_the_same_logps(tiny_root, tmp_path, model_cfg, items):
    loads = []

    def load():
        loads.append(1)
        return load_causal_lm(tiny_root / "model", model_cfg)

    policy = _lora_policy(tiny_root, model_cfg)
    batch = collate(items, range(len(items)), PAD)
    frozen = build_reference("frozen_copy", PiRef(policy, load, False), items, "train", None)
    adapter_off = build_reference("lora_disabled", PiRef(policy, load, True), items, "train", None)
    tables = _tables(tmp_path)
    cached = build_reference("cached", PiRef(policy, load, False), items, "train", tables)
    assert len(loads) == 2  # the frozen copy, and the cached mode's copy that filled its table
    assert isinstance(cached, CachedReference) and set(tables.keys) == {"train"}
    a, b, c = frozen.logps(batch), adapter_off.logps(batch), cached.logps(batch)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_policy_logps(policy, batch), a, atol=1e-3)  # the adapter is on
    again = build_reference("cached", PiRef(policy, load, False), items, "train", tables)
    assert len(loads) == 2 and torch.equal(again.logps(batch), c)  # the table is read back


def test_the_adapter_off_reference_stays_put_while_the_policy_trains(tiny_root, model_cfg, items):
    policy = _lora_policy(tiny_root, model_cfg, scale=0.0)  # B = 0: the policy starts as pi_ref
    reference = build_reference("lora_disabled", PiRef(policy, None, True), items, "train", None)
    batch = collate(items, range(len(items)), PAD)
    before = reference.logps(batch)
    torch.testing.assert_close(_policy_logps(policy, batch), before)
    optimizer = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=1.0)
    logps, _ = sequence_logps(
        policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
    )
    (-logps.sum()).backward()
    optimizer.step()
    assert policy.training  # the reference pass restores the policy's mode
    torch.testing.assert_close(reference.logps(batch), before)
    assert (_policy_logps(policy, batch) - before).abs().max() > 1e-2


def test_a_fresh_batch_goes_to_the_live_model(tiny_root, tmp_path, model_cfg, items):
    policy = load_causal_lm(tiny_root / "model", model_cfg)
    frozen = LiveReference(load_causal_lm(tiny_root / "model", model_cfg))
    pi_ref = PiRef(policy, lambda: load_causal_lm(tiny_root / "model", model_cfg), False)
    cached = build_reference("cached", pi_ref, items, "train", _tables(tmp_path))
    pi_ref.release()  # tables filled: no model in memory until a batch needs one
    fresh = build_batch([[4, 5, 6], [7, 8]], [[9, 10, 11, 12], [13]], PAD)  # no item index
    torch.testing.assert_close(cached.logps(fresh), frozen.logps(fresh), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no live model"):
        CachedReference(cached.table).logps(fresh)


def test_per_token_logps_are_aligned_on_the_response_and_sum_to_the_sequence_logps(
    tiny_root, model_cfg, items
):
    model = load_causal_lm(tiny_root / "model", model_cfg)
    reference = LiveReference(model)
    batch = collate(items, range(len(items)), PAD)
    per_token = reference.token_logps(batch)  # (2B, L)
    mask = batch["response_mask"][:, 1:]  # (2B, T-1)
    lengths = mask.sum(-1)
    assert per_token.shape == (2 * len(items), int(lengths.max()))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    full = token_logps(logits, batch["input_ids"])  # (2B, T-1), position t predicts t + 1
    for row in range(per_token.shape[0]):
        n = int(lengths[row])
        torch.testing.assert_close(per_token[row, :n], full[row][mask[row]], atol=1e-5, rtol=1e-5)
        assert torch.all(per_token[row, n:] == 0)
    torch.testing.assert_close(per_token.sum(-1), reference.logps(batch), atol=1e-5, rtol=1e-5)


def test_a_cached_reference_gives_the_live_per_token_logps(tiny_root, model_cfg, items, tmp_path):
    live = LiveReference(load_causal_lm(tiny_root / "model", model_cfg))
    pi_ref = PiRef(None, lambda: live.model, adapter_off=False)
    tables = ReferenceTables(tmp_path, "fingerprint", "float32", PAD, 3, torch.device("cpu"))
    plain = build_reference("cached", pi_ref, items, "train", tables)
    assert "token_logps" not in plain.columns
    cached = build_reference("cached", pi_ref, items, "train", tables, per_token=True)
    batch = collate(items, [2, 0, 1], PAD)
    torch.testing.assert_close(cached.token_logps(batch), live.token_logps(batch))
    torch.testing.assert_close(cached.logps(batch), live.logps(batch))
    again = build_reference("cached", pi_ref, items, "train", tables)  # the entry now has both
    assert torch.equal(again.logps(batch), cached.logps(batch))
    with pytest.raises(ValueError, match="without per-token log-probs"):
        plain.token_logps(batch)


def test_log_sum_sq_probs_is_the_log_of_the_summed_squared_probabilities(
    tiny_root, model_cfg, items
):
    model = load_causal_lm(tiny_root / "model", model_cfg)
    batch = collate(items, range(2), PAD)
    with torch.no_grad():
        _, lengths, log_sq = response_token_logps(
            model, batch["input_ids"], batch["attention_mask"], batch["response_mask"], True
        )
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    row, first = 0, int(batch["response_mask"][0].nonzero()[0])  # the first response token
    probs = torch.softmax(logits[row, first - 1].double(), -1)  # predicts that token
    assert log_sq[row, 0].item() == pytest.approx(torch.log((probs**2).sum()).item(), rel=1e-5)
    assert torch.all(log_sq[row, int(lengths[row]) :] == 0)
    assert not log_sq.requires_grad


def test_a_frozen_copy_moves_towards_the_lora_policy(tiny_root, model_cfg, items):
    policy = _lora_policy(tiny_root, model_cfg)
    base = lambda: load_causal_lm(tiny_root / "model", model_cfg)  # noqa: E731
    reference = build_reference("frozen_copy", PiRef(policy, base, False), items, "", None)
    batch = collate(items, range(len(items)), PAD)
    pi, pi_ref = _policy_logps(policy, batch), reference.logps(batch)
    reference.update_from(policy, 0.0)
    torch.testing.assert_close(reference.logps(batch), pi_ref, atol=1e-5, rtol=1e-5)
    reference.update_from(policy, 0.5)
    halfway = reference.logps(batch)
    assert not torch.allclose(halfway, pi_ref, atol=1e-3) and not torch.allclose(halfway, pi)
    reference.update_from(policy, 1.0)  # the hard update: pi_ref is the policy
    torch.testing.assert_close(reference.logps(batch), pi, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(_policy_logps(policy, batch), pi, atol=1e-4, rtol=1e-4)


def test_the_adapter_off_reference_cannot_move(tiny_root, model_cfg, items):
    policy = _lora_policy(tiny_root, model_cfg)
    reference = build_reference("lora_disabled", PiRef(policy, None, True), items, "", None)
    with pytest.raises(ValueError, match="policy's own base; it cannot move"):
        reference.update_from(policy, 0.5)


def test_released_pi_ref_is_freed_and_loaded_again(tiny_root, model_cfg):
    loaded = []

    def load():
        model = load_causal_lm(tiny_root / "model", model_cfg)
        loaded.append(weakref.ref(model))
        return model

    pi_ref = PiRef(None, load, adapter_off=False)
    assert pi_ref.module() is pi_ref.module() and len(loaded) == 1  # loaded once, kept
    pi_ref.release()
    gc.collect()
    assert loaded[0]() is None
    pi_ref.live()
    assert len(loaded) == 2


def test_a_table_entry_holds_other_named_columns(tmp_path, items):
    logps = torch.randn(len(items), 2)
    prefix = torch.randn(len(items), 2)
    key = cache_key("fingerprint", items, "float32")
    path = tmp_path / "reference_logps" / f"{key}.safetensors"
    path.parent.mkdir()
    save_file({"logps": logps, "prefix_logps": prefix}, str(path))
    columns, computed = cached_table(tmp_path, key, lambda: None)
    table = columns["logps"]
    assert not computed and torch.equal(table, logps)
    reference = CachedReference(table, prefix_logps=prefix)
    batch = collate(items, [3, 1], PAD)
    assert torch.equal(reference.rows("prefix_logps", batch), prefix[[3, 1, 3, 1], [0, 0, 1, 1]])
    assert torch.equal(reference.logps(batch), logps[[3, 1, 3, 1], [0, 0, 1, 1]])
