"""The batch-source seam: a toy online DPO trains through it and resumes exactly.

Each step of the toy algorithm draws prompts and a sampling seed from its own generator, samples two
responses per prompt from the current policy with the package's sampler, scores them with the built-in
task's gold reward and trains DPO on the best against the worst. Its generator is the state the
checkpoint must carry: a run cut and resumed gives the straight run's metrics.jsonl, and a resume that
drops that state does not.
"""

import dataclasses
import json

import pytest
import torch

from prefopt.models.sampling import sample_responses
from prefopt.tasks import build_task
from prefopt.trainer.batching import GlobalBatch
from prefopt.trainer.build import RunSettings, build_run
from prefopt.trainer.items import TrainItem
from prefopt.trainer.loop import Hooks, Trainer
from prefopt.trainer.setup import check_config

OVERRIDES = [
    "task=reviews_tiny",
    "eval.generate=false",
    "trainer.reference=frozen_copy",  # pi_ref's log-probs of fresh samples: a live model
    "trainer.batch_size=4",
    "trainer.max_steps=8",
    "trainer.log_every=1",
    "eval.eval_every=4",
    "device=cpu",
    "num_threads=1",
]
PROMPTS = 32  # train prompts the toy algorithm draws from
CUT_AT = 6  # the cut run stops after this step (its newest checkpoint is step 4's)


class OnlineBestVsWorst:
    """Online DPO pairs: for each of ``batch_size`` prompts, the best and the worst (by the gold
    reward) of ``samples`` responses of the current policy."""

    def __init__(self, task, tokenizer, prompts, batch_size, seed, samples=2, max_new_tokens=12):
        self.task, self.tokenizer, self.prompts = task, tokenizer, prompts
        self.prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        self.batch_size, self.samples, self.max_new_tokens = batch_size, samples, max_new_tokens
        self.size = len(prompts)
        self.generator = torch.Generator().manual_seed(seed)
        self.calls = 0

    def batch(self, step, policy):
        self.calls += 1
        chosen = torch.randperm(self.size, generator=self.generator)[: self.batch_size].tolist()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        rows = [i for i in chosen for _ in range(self.samples)]
        drawn = sample_responses(
            policy,
            self.tokenizer,
            [self.prompt_ids[i] for i in rows],
            max_new_tokens=self.max_new_tokens,
            seed=seed,
        )
        rewards = self.task.gold_reward([self.prompts[i] for i in rows], drawn.texts)
        rewards = torch.as_tensor(rewards).reshape(len(chosen), self.samples)
        items = []
        for k, i in enumerate(chosen):
            responses = drawn.response_ids[k * self.samples : (k + 1) * self.samples]
            best, worst = int(rewards[k].argmax()), int(rewards[k].argmin())
            items.append(TrainItem(self.prompt_ids[i], responses[best], responses[worst]))
        return GlobalBatch(items, list(range(len(items))))

    def metrics(self):
        return {}

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


class Forgetful(OnlineBestVsWorst):
    """The same algorithm, but its state is not restored on resume (starts from its seed again)."""

    def load_state_dict(self, state):
        pass


def _online_trainer(cfg, run_dir, source_type=OnlineBestVsWorst, hooks=None):
    loss_fn = check_config(cfg)
    run = build_run(cfg, run_dir, loss_fn)
    task = build_task(cfg.task)
    prompts = task.split_prompts()["train"][:PROMPTS]
    source = source_type(task, run.tokenizer, prompts, int(cfg.trainer.batch_size), int(cfg.seed))
    run = dataclasses.replace(run, batches=source)
    return Trainer(run, RunSettings.from_config(cfg), hooks), source


def _stop_at(step):
    def hook(trainer, row):
        if row["step"] == step:
            raise KeyboardInterrupt

    return Hooks(on_step_end=[hook])


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _cut_and_resume(cfg, run_dir, source_type):
    trainer, _ = _online_trainer(cfg, run_dir, source_type, _stop_at(CUT_AT))
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    trainer, source = _online_trainer(cfg, run_dir, source_type)
    return trainer.fit(), source


@pytest.mark.slow
def test_online_algorithm_resumes_exactly_through_the_batch_source(compose_config, tmp_path):
    cfg = compose_config(OVERRIDES)
    straight_trainer, straight_source = _online_trainer(cfg, tmp_path / "straight")
    straight = straight_trainer.fit()
    assert straight_source.calls == 8  # every step's batch came from sampling
    rows = _rows(tmp_path / "straight")
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 9))
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(set(losses)) > 1  # the batches differ from step to step

    resumed, source = _cut_and_resume(cfg, tmp_path / "cut", OnlineBestVsWorst)
    assert source.calls == 8 - 4  # resumed from step 4's checkpoint
    assert _rows(tmp_path / "cut") == rows
    for key in ("final", "best", "steps", "tokens_seen"):
        assert resumed[key] == straight[key], key

    _cut_and_resume(cfg, tmp_path / "forgetful", Forgetful)
    assert _rows(tmp_path / "forgetful") != rows  # the source's state is what keeps it exact
