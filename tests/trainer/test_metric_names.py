"""One name, one meaning: a batch scored as a training row and as a held-out row gives the same
value for every metric name the two share."""

import random

import pytest
import torch
from tiny import make_config

from prefopt.eval.heldout import heldout_metrics
from prefopt.losses import build_loss
from prefopt.models.loading import load_causal_lm
from prefopt.trainer.batching import collate
from prefopt.trainer.items import TrainItem
from prefopt.trainer.reference import LiveReference
from prefopt.trainer.step import accuracy_and_margin, forward_loss, metric_sums

PAD = 0


def _items(n=8):
    rng = random.Random(1)
    words = lambda k: [rng.randrange(3, 21) for _ in range(k)]  # noqa: E731
    return [
        TrainItem(words(3), words(rng.randint(1, 5)), words(rng.randint(1, 5))) for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [("dpo", {"beta": 0.5}), ("ipo", {"beta": 2.0}), ("simpo", {}), ("orpo", {})],
)
def test_a_train_row_and_a_heldout_row_agree_on_every_shared_name(
    tiny_root, tmp_path, name, hyperparameters
):
    model_cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo"}).model
    policy = load_causal_lm(tiny_root / "model", model_cfg)
    reference_model = load_causal_lm(tiny_root / "model", model_cfg)
    with torch.no_grad():
        torch.manual_seed(0)
        for param in reference_model.parameters():
            param.add_(0.3 * torch.randn_like(param) * param.std().clamp_min(1e-3))
    reference = LiveReference(reference_model)
    loss_fn = build_loss(name, **hyperparameters)
    items = _items()
    batch = collate(items, range(len(items)), PAD)
    with torch.no_grad():
        out, logps, _, ref_logps = forward_loss(policy, loss_fn, reference, batch)
    sums = metric_sums(out, logps, ref_logps, paired=True)
    train = {key: value.item() / len(items) for key, value in sums.items()}
    held = heldout_metrics(
        policy, loss_fn, items, items, reference, reference, PAD, 16, torch.device("cpu")
    )
    shared = set(train) & set(held)
    assert {"loss", "chosen_logps", "rejected_logps", "loss_reward_accuracy"} <= shared
    if loss_fn.requires_reference:
        assert {"reward_accuracy", "reward_margin"} <= shared
    for key in shared:
        assert train[key] == pytest.approx(held[key], rel=1e-5, abs=1e-6), key


def test_a_tie_counts_one_half():
    correct, margin = accuracy_and_margin(torch.tensor([1.0, 0.0, -2.0, 0.0]))
    assert correct.item() == 2.0 and margin.item() == -1.0
