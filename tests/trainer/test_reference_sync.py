"""TR-DPO's moving reference: updated at the sync steps to the mixed weights, kept in checkpoints,
refused where pi_ref cannot move."""

import json

import pytest
import torch
from tiny import interrupt_train_step, make_config

from prefopt.errors import ConfigError
from prefopt.trainer import run as run_module
from prefopt.trainer.batching import collate
from prefopt.trainer.setup import check_config

LOSS = {"name": "dpo", "beta": 0.5}
SYNC = {"reference": "frozen_copy", "reference_sync_every": 3, "reference_sync_alpha": 0.5}


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_reference_moves_at_the_sync_steps_to_the_mixed_weights(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", LOSS, max_steps=6, **SYNC)
    seen = []

    def record(trainer, row):  # runs after the sync hook of the same step
        reference = trainer.run.reference
        batch = collate(trainer.batches.items, range(4), trainer.run.pad_id)
        policy = trainer.acc.unwrap_model(trainer.policy)
        seen.append((row["step"], _weights(reference.model), _weights(policy), reference, batch))

    run_module.run_training(cfg, tmp_path / "run", on_step_end=[record])
    steps = [s for s, *_ in seen]
    assert steps == [1, 2, 3, 4, 5, 6]
    ref = {s: w for s, w, *_ in seen}
    pol = {s: p for s, _, p, *_ in seen}
    first_ref = ref[1]
    for name in first_ref:
        assert torch.equal(ref[2][name], first_ref[name])  # no update at steps 1 and 2
        mixed = 0.5 * pol[3][name] + 0.5 * ref[2][name]  # pi_ref <- α pi + (1 - α) pi_ref
        torch.testing.assert_close(ref[3][name], mixed)
        assert torch.equal(ref[5][name], ref[3][name])
        torch.testing.assert_close(ref[6][name], 0.5 * pol[6][name] + 0.5 * ref[5][name])
    assert any(not torch.equal(ref[3][n], first_ref[n]) for n in first_ref)
    # The log-probs the loss reads are those of the mixed weights.
    _, weights, _, reference, batch = seen[-1]
    reference.model.load_state_dict(ref[5])
    before = reference.logps(batch)
    reference.model.load_state_dict(weights)
    after = reference.logps(batch)
    assert not torch.allclose(before, after)


def test_evaluation_keeps_the_original_reference(tiny_root, tmp_path):
    moved = make_config(tiny_root, tmp_path / "cache", LOSS, max_steps=4, **SYNC)
    fixed = make_config(tiny_root, tmp_path / "cache", LOSS, max_steps=4, reference="frozen_copy")
    rows = {}
    for name, cfg in (("moved", moved), ("fixed", fixed)):
        run_module.run_training(cfg, tmp_path / name)
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        rows[name] = [json.loads(x) for x in lines]
    # Identical up to step 3, where the reference first moves; step 0's held-out rewards agree.
    held = {n: [r for r in rs if r["split"] == "validation"] for n, rs in rows.items()}
    assert held["moved"][0] == held["fixed"][0]
    train = {n: [r["loss"] for r in rs if r["split"] == "train"] for n, rs in rows.items()}
    assert train["moved"][:3] == train["fixed"][:3] and train["moved"][3] != train["fixed"][3]


def test_a_resumed_run_continues_with_the_moved_reference(tiny_root, tmp_path, monkeypatch):
    def cfg():
        return make_config(tiny_root, tmp_path / "cache", LOSS, max_steps=6, **SYNC)

    run_module.run_training(cfg(), tmp_path / "straight")
    interrupt_train_step(monkeypatch, run_module.Trainer, 6)  # after step 4's checkpoint
    with pytest.raises(KeyboardInterrupt):
        run_module.run_training(cfg(), tmp_path / "cut")
    monkeypatch.undo()
    run_module.run_training(cfg(), tmp_path / "cut")
    rows = lambda d: (tmp_path / d / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    assert rows("cut") == rows("straight")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.reference_sync_every=4"], r"trainer\.reference=cached .* table computed once"),
        (
            [
                "trainer.reference_sync_every=4",
                "trainer.reference=lora_disabled",
                "model.lora.enabled=true",
            ],
            r"trainer\.reference=lora_disabled .* policy's own base",
        ),
        (
            ["trainer.reference_sync_every=4", "trainer.reference=frozen_copy", "loss=simpo"],
            r"loss 'simpo' reads no reference",
        ),
    ],
)
def test_a_reference_that_cannot_move_is_refused(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(overrides))
    check_config(
        compose_config(["trainer.reference_sync_every=4", "trainer.reference=frozen_copy"])
    )


def test_the_update_is_trls_sync_ref_model(tiny_root, tmp_path):
    """TRL's SyncRefModelCallback mixes the weights the same way (ref_model_mixup_alpha)."""
    callbacks = pytest.importorskip("trl.trainer.callbacks")
    from prefopt.models.loading import load_causal_lm
    from prefopt.trainer.reference import LiveReference

    model_cfg = make_config(tiny_root, tmp_path / "cache", LOSS).model
    policy, ours, theirs = (load_causal_lm(tiny_root / "model", model_cfg) for _ in range(3))
    with torch.no_grad():
        torch.manual_seed(0)
        for param in policy.parameters():
            param.add_(torch.randn_like(param))
    LiveReference(ours).update_from(policy, 0.6)
    callbacks.SyncRefModelCallback._sync_target_model(policy, theirs, 0.6)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    assert not torch.equal(
        next(ours.parameters()), next(load_causal_lm(tiny_root / "model", model_cfg).parameters())
    )
