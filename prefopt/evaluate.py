"""Evaluate a saved checkpoint of a run against pi_ref, as training does.

    python -m prefopt.evaluate run_dir=outputs/default/RUN [checkpoint=final|step_N] [split=test]
        [best_of_n=false]

Reads ``<run_dir>/config.yaml`` (the run's resolved config), loads the policy from
``<run_dir>/policy`` (checkpoint=final) or ``<run_dir>/checkpoints/step_<N:07d>`` (the training
checkpoint's safetensors weights on the run's starting model, LoRA included), builds the
task, judge and evaluator with :func:`prefopt.eval.build_evaluator`, and writes
``<run_dir>/eval/<checkpoint>_<split>.json`` and its samples ``..._samples.jsonl`` atomically; with
best_of_n=true also ``<run_dir>/eval/best_of_n_<split>.json`` (pi_ref's best-of-n baseline).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from prefopt.console import setup_console
from prefopt.eval import build_evaluator
from prefopt.models.loading import (
    apply_lora,
    load_causal_lm,
    load_frozen_reference,
    load_tokenizer,
    model_fingerprint,
)
from prefopt.results.store import atomic_write_json
from prefopt.trainer.checkpoint import load_checkpoint_weights

log = logging.getLogger(__name__)

ARGUMENTS = {"run_dir": None, "checkpoint": "final", "split": "test", "best_of_n": "false"}


def checkpoint_dir(run_dir: Path, checkpoint: str) -> tuple[Path, int]:
    """The directory of ``checkpoint`` (final or step_N) and its step (-1 for final)."""
    match = re.fullmatch(r"step_(\d+)", checkpoint)
    if checkpoint == "final":
        path, step = run_dir / "policy", -1
    elif match:
        step = int(match.group(1))
        path = run_dir / "checkpoints" / f"step_{step:07d}"
    else:
        raise ValueError(f"checkpoint must be 'final' or 'step_N', got {checkpoint!r}")
    if not path.is_dir():
        saved = sorted(p.parent.name for p in (run_dir / "checkpoints").glob("step_*/state.pt"))
        raise FileNotFoundError(
            f"no saved model for checkpoint {checkpoint!r} at {path}; saved checkpoints: "
            f"{saved or 'none'}" + ("" if (run_dir / "policy").is_dir() else ", no final policy")
        )
    return path, step


def evaluate_run(
    run_dir: str | Path, checkpoint: str = "final", split: str = "test", best_of_n: bool = False
) -> dict[str, float]:
    """Evaluate one checkpoint of a run on one split; returns the metrics it writes."""
    from prefopt.trainer.setup import pick_device, resolve_task

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist: is {run_dir} a run directory?")
    model_dir, step = checkpoint_dir(run_dir, checkpoint)
    cfg = OmegaConf.load(config_path)
    cache_dir = Path(str(cfg.cache_dir)).expanduser()
    task, resolved = resolve_task(cfg, cache_dir)
    if resolved.eval_prompts is None:
        raise ValueError("this run has no built-in task, so no held-out prompt files to read")
    device = pick_device(str(cfg.get("device", "auto")))
    tokenizer_dir = model_dir if (model_dir / "tokenizer_config.json").exists() else None
    tokenizer = load_tokenizer(tokenizer_dir or resolved.model_path, cfg.model)
    reference = load_frozen_reference(resolved.baseline_path, cfg.model).to(device)
    if step < 0:
        policy = load_causal_lm(model_dir, cfg.model).to(device)
    else:
        policy = load_causal_lm(resolved.model_path, cfg.model)
        if OmegaConf.select(cfg, "model.lora.enabled", default=False):
            policy = apply_lora(policy, cfg.model.lora)
        load_checkpoint_weights(model_dir, policy)
        policy.to(device)
    needs_pairs = cfg.judge.kind == "proxy" or bool(cfg.eval.get("proxy"))
    evaluator = build_evaluator(
        cfg,
        tokenizer,
        reference,
        model_fingerprint(resolved.baseline_path, cfg.model),
        resolved.eval_prompts,
        train_pairs=_read_pairs(resolved.data_cfg) if needs_pairs else None,
        task=task,
        device=str(device),
    )
    out_dir = run_dir / "eval"
    metrics = evaluator.evaluate(
        policy,
        split,
        step,
        int(cfg.seed),
        samples_path=out_dir / f"{checkpoint}_{split}_samples.jsonl",
    )
    atomic_write_json(
        out_dir / f"{checkpoint}_{split}.json",
        {"checkpoint": checkpoint, "split": split, "step": step, **metrics},
    )
    if best_of_n:
        ns = cfg.eval.get("best_of_n_ns") or [1, 2, 4, 8, 16]
        rows = evaluator.best_of_n(split, ns=list(ns), seed=int(cfg.seed))
        atomic_write_json(out_dir / f"best_of_n_{split}.json", rows)
    return metrics


def _read_pairs(data_cfg: dict) -> list[dict]:
    """The training pairs' strings from the JSONL file the data config points at."""
    path = Path(str((data_cfg.get("splits") or {}).get("train", "")))
    if not path.is_file():
        raise FileNotFoundError(
            f"the proxy judge needs the training pairs; no JSONL file at {path}"
        )
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """key=value arguments, checked against :data:`ARGUMENTS`; run_dir is required."""
    args = dict(ARGUMENTS)
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in ARGUMENTS:
            raise ValueError(
                f"bad argument {item!r}; expected key=value with key in {list(ARGUMENTS)}"
            )
        args[key] = value
    if not args["run_dir"]:
        raise ValueError("run_dir=PATH is required")
    if args["best_of_n"] not in ("true", "false"):
        raise ValueError(f"best_of_n must be true or false, got {args['best_of_n']!r}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    setup_console()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    metrics = evaluate_run(
        args["run_dir"], args["checkpoint"], args["split"], args["best_of_n"] == "true"
    )
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
