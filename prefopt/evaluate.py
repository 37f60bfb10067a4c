"""Evaluate a saved checkpoint of a run exactly as its trainer did, on one held-out split.

    python -m prefopt.evaluate run_dir=PATH [checkpoint=final|best|step_N] [split=test|validation]
        [best_of_n=false] [debug=false]

    python -m prefopt.evaluate run_dir=outputs/default/dpo/default checkpoint=best split=test

What it needs: the run's directory as the run printed it, holding ``config.yaml`` (the run's
resolved config) and the checkpoint; the data source and models that config names, still in place
(relative paths are read from the current directory, as in training); and a held-out split to
score: the built-in task's validation and test prompts, or the validation and test splits of a data
file (``data.splits.validation`` / ``data.splits.test``; a run without a validation split holds one
out of its training rows, and so does this command). It rebuilds the run's data, reference and
evaluator with the trainer's own functions, loads the checkpoint's weights into the policy as built
for training (LoRA included) and scores it with the trainer's evaluation, at the step the trainer
scored it, so the sampling seed, the prompts and pi_ref's cached samples are the trainer's: the row
equals the trainer's row in ``metrics.jsonl`` for that step and split (timings aside).

Checkpoints: ``final`` (the last step's checkpoint of a finished run), ``best`` (the best validation
checkpoint of a finished run, at its step) or ``step_N`` (a checkpoint kept in ``checkpoints/``).
Writes ``<run_dir>/eval/<checkpoint>_<split>.json`` (the row and the checkpoint's name) and its
samples ``..._samples.jsonl``; with best_of_n=true also ``<run_dir>/eval/best_of_n_<split>.json``
(pi_ref's best-of-n baseline under the run's judge).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from prefopt.console import setup_console
from prefopt.errors import RunMismatchError, UserError
from prefopt.eval.settings import EvalSettings
from prefopt.results.store import atomic_write_json, read_json, to_jsonable
from prefopt.trainer.checkpoint import (
    best_weights_dir,
    checkpoint_dir,
    checkpoint_step,
    load_checkpoint_weights,
    load_loss_state,
    saved_checkpoints,
)

log = logging.getLogger(__name__)

ARGUMENTS = {  # key: (default, what it means); run_dir has no default
    "run_dir": (None, "the run's directory (holds config.yaml), as the run printed it; required"),
    "checkpoint": (
        "final",
        "final (last step of a finished run), best (best validation checkpoint of a finished "
        "run) or step_N (a checkpoint kept in <run_dir>/checkpoints)",
    ),
    "split": ("test", "held-out split to score: validation or test"),
    "best_of_n": (
        "false",
        "true: also pi_ref's best-of-n baseline on the split (eval.best_of_n_ns)",
    ),
    "debug": ("false", "true: show the traceback of an error the user can fix"),
}
BOOLEANS = ("true", "false")
EXAMPLE = (
    "python -m prefopt.evaluate run_dir=outputs/default/dpo/default checkpoint=best split=test"
)


class RunNotFoundError(UserError, FileNotFoundError):
    """run_dir is not a run directory (no config.yaml)."""


class UnknownCheckpointError(UserError, ValueError):
    """The checkpoint argument names no checkpoint the run has kept."""


class RunNotFinishedError(UserError):
    """final or best asked of a run that has not finished."""


class ArgumentError(UserError, ValueError):
    """A command-line argument is malformed, unknown or has a bad value."""


@dataclass
class Checkpoint:
    """A checkpoint to evaluate: its name, the step the trainer scored it at, its weights."""

    name: str
    step: int
    weights_dir: Path  # holds model.safetensors: the policy's weights as built for training


def find_checkpoint(run_dir: Path, checkpoint: str) -> Checkpoint:
    """``final``, ``best`` or ``step_N`` of the run in ``run_dir``, with the step it was scored at."""
    kept = [p.name for p in saved_checkpoints(run_dir)]
    choices = f"kept in {run_dir / 'checkpoints'}: {', '.join(kept) or 'none'}"
    if checkpoint in ("final", "best"):
        summary_path = run_dir / "summary.json"
        status = read_json(summary_path).get("status") if summary_path.is_file() else None
        if status != "finished":
            raise RunNotFinishedError(
                f"checkpoint={checkpoint} needs a finished run; the status of {run_dir} is "
                f"{status or 'unknown (no summary.json)'}; evaluate checkpoint=step_N instead, "
                f"{choices}"
            )
        summary = read_json(summary_path)
        if checkpoint == "final":
            step = int(summary["steps"])
            return _existing(Checkpoint("final", step, checkpoint_dir(run_dir, step)), choices)
        if not summary.get("best"):
            raise UnknownCheckpointError(f"{run_dir} selected no best checkpoint; {choices}")
        step = int(summary["best"]["step"])
        return _existing(Checkpoint("best", step, best_weights_dir(run_dir)), choices)
    step = checkpoint_step(checkpoint)
    if step is None:
        raise UnknownCheckpointError(
            f"checkpoint={checkpoint!r}: expected final, best or step_N; {choices}"
        )
    path = checkpoint_dir(run_dir, step)
    return _existing(Checkpoint(path.name, step, path), choices)


def _existing(point: Checkpoint, choices: str) -> Checkpoint:
    if not (point.weights_dir / "model.safetensors").is_file():
        raise UnknownCheckpointError(
            f"checkpoint {point.name} (step {point.step}): no weights at {point.weights_dir}; "
            f"{choices}"
        )
    return point


def evaluate_run(
    run_dir: str | Path, checkpoint: str = "final", split: str = "test", best_of_n: bool = False
) -> dict:
    """Score one checkpoint of a run on one split as its trainer did; returns the row it writes.

    The row has the trainer's keys: ``split``, ``step``, ``epoch``, the held-out pair metrics
    (when the split has pairs) and the generation metrics (when the run generates).
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        what = "does not exist" if not run_dir.exists() else "has no config.yaml"
        raise RunNotFoundError(
            f"run_dir={run_dir} {what}: give the directory a training run printed"
        )
    point = find_checkpoint(run_dir, checkpoint)
    cfg = OmegaConf.load(config_path)
    _check_inputs_unchanged(run_dir, cfg)
    settings = EvalSettings.from_config(cfg.eval)  # every key, as the trainer checked them
    ns = list(settings.best_of_n_ns)
    if best_of_n and not (ns and settings.generate):
        raise ArgumentError(
            "best_of_n=true needs a run that generates (eval.generate) with eval.best_of_n_ns"
        )
    out_dir = run_dir / "eval"
    with tempfile.TemporaryDirectory(prefix="prefopt-evaluate-") as scratch:
        row, evaluator = _score(cfg, point, split, Path(scratch), out_dir, best_of_n)
    row = to_jsonable(row)  # NaN as None, as metrics.jsonl holds it
    atomic_write_json(out_dir / f"{point.name}_{split}.json", {"checkpoint": point.name, **row})
    if best_of_n:
        atomic_write_json(out_dir / f"best_of_n_{split}.json", evaluator.best_of_n(split, ns))
    return row


def _check_inputs_unchanged(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse a run whose data or model files changed since it trained (its numbers would not be
    the trainer's); a change of code only warns."""
    from prefopt.results.identity import IDENTITY_FILE, RunIdentity

    path = run_dir / IDENTITY_FILE
    if not path.exists():
        return
    stored = read_json(path)
    current = RunIdentity.of(cfg, Path(str(cfg.cache_dir)).expanduser().resolve())
    changes = current.changes_from(stored)
    if changes:
        raise RunMismatchError(
            f"{run_dir} was trained on other inputs than it would be evaluated on now:\n  "
            + "\n  ".join(changes)
        )
    if stored.get("code") != current.code:
        log.warning(
            "%s was trained by prefopt %s (now %s)", run_dir, stored.get("code"), current.code
        )


def _score(
    cfg: DictConfig, point: Checkpoint, split: str, scratch: Path, out_dir: Path, best_of_n: bool
):
    """The trainer's evaluation row of ``point`` on ``split``, and the evaluator (None when the
    run does not generate). The trainer's bookkeeping files go to ``scratch``."""
    from prefopt.online.settings import heldout_loss
    from prefopt.trainer import data_setup, model_setup
    from prefopt.trainer.batching import FixedBatches
    from prefopt.trainer.build import Run, RunSettings
    from prefopt.trainer.loop import Trainer
    from prefopt.trainer.setup import check_config, resolve_task

    loss_fn = check_config(cfg)
    accelerator = _accelerator(cfg)
    cache_dir = Path(str(cfg.cache_dir)).expanduser().resolve()
    task, resolved = resolve_task(cfg, cache_dir)
    data = data_setup.prepare_data(cfg, resolved, loss_fn, scratch)
    settings = RunSettings.from_config(cfg, accelerator.num_processes, data.items_per_pair)
    generates = settings.eval.generate
    _check_split(split, data, generates)
    models = model_setup.prepare_models(cfg, resolved, loss_fn, data, cache_dir, accelerator)
    evaluator = None
    if generates:
        evaluator = model_setup.run_evaluator(cfg, task, data, models)
        if best_of_n and not evaluator.judge.pointwise:
            raise ArgumentError(
                f"best_of_n=true needs a pointwise judge; {evaluator.judge.name!r} is pairwise"
            )
    samples_path = out_dir / f"{point.name}_{split}_samples.jsonl"

    def evaluate_generations(model, split_name: str, step: int) -> dict:
        return evaluator.evaluate(model, split_name, step, int(cfg.seed), samples_path=samples_path)

    run = Run(
        run_dir=scratch,
        policy=models.policy,
        loss_fn=heldout_loss(cfg, loss_fn),  # an online algorithm's rows report no loss
        batches=FixedBatches(data.train_items, settings.trainer.batch_size, int(cfg.seed)),
        reference=models.train_reference,
        heldout=models.heldout,
        tokenizer=data.tokenizer,
        accelerator=accelerator,
        evaluate_generations=evaluate_generations if generates else None,
        settings=settings,
    )
    trainer = Trainer(run, settings)
    load_checkpoint_weights(point.weights_dir, accelerator.unwrap_model(trainer.policy))
    loss_state = load_loss_state(point.weights_dir)
    if loss_state:  # a loss with state (BCO's running mean) scores with the trainer's
        loss_fn.load_state_dict(loss_state)
    # scored at the trainer's step: the sampling seed and the row derive from it
    return trainer.evaluate([split], point.step)[split], evaluator


def _check_split(split: str, data, generates: bool) -> None:
    """Refuse a split the trainer could not have scored (no held-out pairs or prompts)."""
    from prefopt.trainer.data_setup import HELDOUT_SPLITS

    scored = set(data.heldout_loss_items) | (set(data.eval_prompts) if generates else set())
    splits = [name for name in HELDOUT_SPLITS if name in scored]
    if split not in splits:
        known = "its data has none" if split in HELDOUT_SPLITS else "not a held-out split"
        raise ArgumentError(
            f"split={split!r}: {known}; this run can score {', '.join(splits) or 'no split'} "
            "(a data file's held-out splits are data.splits.validation and data.splits.test)"
        )


def _accelerator(cfg: DictConfig):
    """An accelerator as the run's trainer made it (device, precision), with its CPU threads."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from prefopt.trainer.setup import pick_device

    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    device = pick_device(str(cfg.device))
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=cfg.trainer.precision, cpu=device.type == "cpu")


def usage() -> str:
    """The --help text: the command line, each argument with its default, an example."""
    lines = [
        "usage: python -m prefopt.evaluate run_dir=PATH [key=value ...]",
        "",
        "Evaluate a saved checkpoint of a training run exactly as its trainer did (the same",
        "seed, prompts and pi_ref samples, so the numbers equal the run's metrics.jsonl row).",
        "The run's config.yaml must name a data source with held-out prompts (the built-in task,",
        "or data.splits.validation / data.splits.test files), still where training read it.",
        "",
        "arguments:",
    ]
    for key, (default, meaning) in ARGUMENTS.items():
        lines.append(f"  {key}=" + ("PATH" if default is None else f"... (default {default})"))
        lines += textwrap.wrap(meaning, width=96, initial_indent=" " * 6, subsequent_indent=" " * 6)
    lines += [
        "",
        "writes <run_dir>/eval/<checkpoint>_<split>.json and ..._samples.jsonl; prints the row",
        "",
        "example:",
        f"  {EXAMPLE}",
    ]
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """key=value arguments, checked against :data:`ARGUMENTS`; run_dir is required."""
    args = {key: default for key, (default, _) in ARGUMENTS.items()}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in ARGUMENTS:
            raise ArgumentError(
                f"bad argument {item!r}; expected key=value with key in {list(ARGUMENTS)} "
                "(see --help)"
            )
        args[key] = value
    if not args["run_dir"]:
        raise ArgumentError("run_dir=PATH is required (see --help)")
    for key in ("best_of_n", "debug"):
        if args[key] not in BOOLEANS:
            raise ArgumentError(f"{key} must be true or false, got {args[key]!r}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: prints the row as JSON on stdout (progress goes to stderr); an error the
    user can fix prints its message alone and exits with status 2 (debug=true shows the
    traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help", "help"} & set(argv):
        print(usage())
        return
    setup_console()
    try:
        args = parse_arguments(argv)
        with contextlib.redirect_stdout(sys.stderr):  # stdout holds the row alone
            row = evaluate_run(
                args["run_dir"], args["checkpoint"], args["split"], args["best_of_n"] == "true"
            )
    except UserError as error:
        if "debug=true" in argv:
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(row, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
