"""TRL parity: TRL 1.16 and prefopt on the same tiny model and batch give the same loss, logged
rewards and gradient, for every loss TRL also has (the cases of trl_cases.py).

TRL's side is its own trainer built on the tiny data set (never trained): its ``compute_loss`` on
its own collated batch runs its log-prob computation (the fused LM head, or the experimental
trainers' logits) and its loss; ``log`` then gives the metrics it would log. prefopt's side is
``forward_loss`` (its log-probs, a live reference) with the loss of ``build_loss_from_config``, on
the token ids TRL trained on, collated by prefopt. Each side has its own copy of one policy and
one reference (a perturbed copy, so that log-ratios are not zero).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from tiny_models import policy_and_reference
from trl_cases import CASES, Case

from prefopt.losses import available_losses, build_loss_from_config, loss_class
from prefopt.tasks.wordlevel import build_word_tokenizer
from prefopt.trainer.batching import collate
from prefopt.trainer.items import TrainItem
from prefopt.trainer.reference import LiveReference
from prefopt.trainer.step import forward_loss

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

PAIRS = {
    # Prompts and responses of different lengths, chosen shorter or longer than rejected.
    "varied": [
        {"prompt": "the film was :", "chosen": " very good .", "rejected": " bad"},
        {"prompt": "the plot is", "chosen": " fine", "rejected": " quite dull and awful ."},
        {"prompt": "acting :", "chosen": " great and good .", "rejected": " dull ."},
        {"prompt": "the acting was very", "chosen": " fine but dull", "rejected": " awful"},
    ],
    # One-token prompts (whose token no position predicts) and chosen responses of one length.
    "uniform_chosen": [
        {"prompt": "film", "chosen": " very good .", "rejected": " bad"},
        {"prompt": "plot", "chosen": " fine and great", "rejected": " quite dull and awful ."},
        {"prompt": "acting", "chosen": " good but fine", "rejected": " dull ."},
        {"prompt": "the", "chosen": " great film .", "rejected": " awful acting"},
    ],
}
# The tokenizer's words: every word of the pairs, so that no token is <unk>.
WORDS = sorted(
    {
        word
        for rows in PAIRS.values()
        for row in rows
        for text in row.values()
        for word in text.split()
    }
)
REFERENCE_NOISE = 0.05  # std of the noise added to every policy weight to make the reference
# Tolerances. Both sides compute in fp32 from the same weights and token ids; they differ only in
# how a log softmax and its sums are ordered (TRL's chunked fused LM head, or log_softmax of the
# logits; prefopt's gather minus logsumexp): a few fp32 ulps. A sequence log-prob here is of order
# 10 to 30, so each carries about 1e-6 of rounding, which stays absolute in a value near 0 (a
# reward, a log-odds ratio): 1e-5 relative plus 1e-5 absolute covers that (the sides agree to
# about 1e-6) and is far below any difference of formula (a beta, a length or a term out of
# place moves these values, of order 0.01 to 10, by 1e-3 or more). Gradients are compared per
# parameter tensor, 1e-5 relative plus 1e-5 of the largest TRL gradient entry absolute (the sides
# agree to about 5e-7 of it).
RTOL = 1e-5
SCALAR_ATOL = 1e-5
GRAD_ATOL = 1e-5  # times the largest |gradient| entry


@dataclass
class Side:
    """What one side computed on the batch."""

    loss: float
    chosen_reward: float  # mean over the batch's chosen (desirable) responses
    rejected_reward: float  # mean over the rejected (undesirable) ones
    metrics: dict[str, float]
    grads: dict[str, torch.Tensor]  # parameter name -> gradient


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(WORDS)


@pytest.fixture(scope="module")
def models(tokenizer):
    """(policy, reference): a 2-layer GPT-2 without dropout and a perturbed copy of it."""
    policy, reference = policy_and_reference(tokenizer, REFERENCE_NOISE)
    return policy, reference


def trl_trainer(case: Case, policy, reference, tokenizer, output_dir):
    """TRL's trainer of the case on its pairs (unpaired by KTOTrainer itself), not trained."""
    rows = PAIRS[case.batch]
    common = {
        "output_dir": str(output_dir),
        # KTO: all 2B unpaired rows in one batch, so that TRL's KL rotation stays within it
        "per_device_train_batch_size": 2 * len(rows) if case.trainer == "kto" else len(rows),
        "bf16": False,
        "use_cpu": True,
        "gradient_checkpointing": False,
        "report_to": [],
        "disable_tqdm": True,
        "save_strategy": "no",
        **case.trl_args,
    }
    dataset = datasets.Dataset.from_list(rows)
    if case.trainer == "dpo":
        args = trl.DPOConfig(max_length=None, **common)
        return trl.DPOTrainer(
            model=policy,
            ref_model=reference,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    if case.trainer == "kto":
        args = trl.KTOConfig(max_length=None, **common)
        return trl.KTOTrainer(
            model=policy,
            ref_model=reference,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    if case.trainer == "cpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        args = CPOConfig(max_length=64, **common)
        return CPOTrainer(
            model=policy, args=args, train_dataset=dataset, processing_class=tokenizer
        )
    if case.trainer == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args = ORPOConfig(max_length=64, **common)
        return ORPOTrainer(
            model=policy, args=args, train_dataset=dataset, processing_class=tokenizer
        )
    raise ValueError(f"unknown TRL trainer {case.trainer!r}")


def train_items(trainer_kind: str, rows: list[dict]) -> list[TrainItem]:
    """prefopt's items holding the token ids of TRL's tokenized rows."""
    if trainer_kind == "dpo":
        return [TrainItem(r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in rows]
    if trainer_kind == "kto":  # the KL completion: TRL's, else the previous row's, as TRL rotates
        return [
            TrainItem(
                r["prompt_ids"],
                r["completion_ids"],
                r.get("KL_completion_ids", rows[i - 1]["completion_ids"]),
                desirable=r["label"],
            )
            for i, r in enumerate(rows)
        ]
    items = []
    for r in rows:  # CPO and ORPO: the prompt is where the labels are -100
        prompt_length = sum(label == -100 for label in r["chosen_labels"])
        prompt = r["chosen_input_ids"][:prompt_length]
        assert r["rejected_input_ids"][:prompt_length] == prompt
        items.append(
            TrainItem(
                prompt,
                r["chosen_input_ids"][prompt_length:],
                r["rejected_input_ids"][prompt_length:],
            )
        )
    return items


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def run_trl(case: Case, models, tokenizer, output_dir) -> tuple[Side, list[TrainItem]]:
    """TRL's loss, logged rewards and metrics, and gradient; the items of its tokenized rows."""
    policy, reference = (copy.deepcopy(model) for model in models)
    trainer = trl_trainer(case, policy, reference, tokenizer, output_dir)
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    policy.train()
    loss = trainer.compute_loss(policy, trainer.data_collator(rows))
    loss.backward()
    trainer.log({"loss": loss.item()})
    logs = trainer.state.log_history[-1]
    side = Side(
        loss=loss.item(),
        chosen_reward=logs["rewards/chosen"],
        rejected_reward=logs["rewards/rejected"],
        metrics={name: logs[name] for name in case.metrics},
        grads=gradients(policy),
    )
    return side, train_items(case.trainer, rows)


def run_prefopt(case: Case, models, items: list[TrainItem], pad_id: int) -> Side:
    """prefopt's forward and loss on the same items: the trainer's mean over the batch."""
    policy, reference = (copy.deepcopy(model) for model in models)
    loss_fn = build_loss_from_config(case.loss)
    batch = collate(items, range(len(items)), pad_id)
    policy.train()
    out, _, _, _ = forward_loss(policy, loss_fn, LiveReference(reference), batch)
    loss = out.losses.sum() / len(items)
    loss.backward()
    return Side(
        loss=loss.item(),
        chosen_reward=out.chosen_rewards.mean().item(),
        rejected_reward=out.rejected_rewards.mean().item(),
        metrics={name: out.metrics[ours].item() for name, ours in case.metrics.items()},
        grads=gradients(policy),
    )


def skip_unless_built(case: Case) -> None:
    """Skip a case whose prefopt loss, or one of its hyperparameters, does not exist yet."""
    registered = available_losses()
    for component in case.loss.get("components", [case.loss]):
        name = component["name"]
        if name not in registered:
            pytest.skip(f"prefopt loss {name!r} is not registered yet")
        unknown = set(component) - {"name", "weight"} - set(loss_class(name).hyperparameters())
        if unknown:
            pytest.skip(f"prefopt loss {name!r} has no hyperparameter {sorted(unknown)} yet")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_prefopt_matches_trl(case, models, tokenizer, tmp_path):
    skip_unless_built(case)
    theirs, items = run_trl(case, models, tokenizer, tmp_path)
    ours = run_prefopt(case, models, items, tokenizer.pad_token_id)
    close = {"rel": RTOL, "abs": SCALAR_ATOL}
    if "loss" in case.compare:
        assert ours.loss == pytest.approx(theirs.loss, **close)
    if "rewards" in case.compare:
        assert ours.chosen_reward == pytest.approx(theirs.chosen_reward, **close)
        assert ours.rejected_reward == pytest.approx(theirs.rejected_reward, **close)
    for name, value in theirs.metrics.items():
        assert value != 0, f"{name} is 0 (KTO's z0 clamped, say): the comparison would test less"
        assert ours.metrics[name] == pytest.approx(value, **close), name
    if "grad" in case.compare:
        scale = max(g.abs().max().item() for g in theirs.grads.values())
        assert scale > 0, "TRL's gradient is zero: the comparison would test nothing"
        assert ours.grads.keys() == theirs.grads.keys()
        for name, grad in theirs.grads.items():
            torch.testing.assert_close(
                ours.grads[name], grad, rtol=RTOL, atol=GRAD_ATOL * scale, msg=name
            )
