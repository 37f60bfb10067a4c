"""One run from a resolved config to a finished run directory.

Run directory: config.yaml, overrides.yaml, data_report.json, metrics.jsonl, samples/, checkpoints/,
policy/ (the final model, loadable with from_pretrained), summary.json, provenance.json and
run_identity.json (config, input files and code version, :mod:`prefopt.results.identity`). A rerun is
checked against run_identity.json first: the same run, finished, says so and does nothing; unfinished,
it resumes from its newest checkpoint; a different one is refused (see ``resume``). A failed run is
marked ``failed`` with the error in summary.json; one stopped by SIGTERM or SIGINT ``interrupted``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from prefopt.results.identity import RunIdentity, bind_run
from prefopt.results.lock import run_lock
from prefopt.results.store import atomic_write_json, atomic_write_text, read_json
from prefopt.trainer import model_setup
from prefopt.trainer.build import build_run
from prefopt.trainer.checkpoint import list_checkpoints
from prefopt.trainer.interrupt import StopRequest, graceful_stop
from prefopt.trainer.loop import Hooks, StepHook, Trainer
from prefopt.trainer.provenance import provenance
from prefopt.trainer.setup import check_config, check_model_sources, is_main_process
from prefopt.trainer.wandb_sink import build_sink

log = logging.getLogger(__name__)


def run_status(run_dir: Path) -> str | None:
    """The status recorded in summary.json, or None when there is none."""
    path = Path(run_dir) / "summary.json"
    return read_json(path).get("status") if path.exists() else None


def run_training(
    cfg: DictConfig,
    run_dir: str | Path,
    overrides: list[str] | None = None,
    on_step_end: Sequence[StepHook] = (),
) -> dict:
    """Train (or resume, or skip when finished) the run described by ``cfg`` in ``run_dir``.

    The run directory is locked while this runs (rank 0 of a distributed launch holds the lock).
    ``on_step_end``: hooks the trainer calls after every optimiser step, ``hook(trainer, row)``
    (see :class:`~prefopt.trainer.loop.Trainer`).
    """
    run_dir = Path(run_dir)
    if not is_main_process():
        return _run_unlocked(cfg, run_dir, overrides, on_step_end)
    with run_lock(run_dir):
        return _run_unlocked(cfg, run_dir, overrides, on_step_end)


def _run_unlocked(
    cfg: DictConfig, run_dir: Path, overrides: list[str] | None, on_step_end: Sequence[StepHook]
) -> dict:
    main = is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cfg.cache_dir).expanduser().resolve()
    try:
        loss_fn = check_config(cfg)
        check_model_sources(cfg)
    except Exception as error:
        if main and run_status(run_dir) != "finished":
            _mark(run_dir, "failed", error)
        raise
    current = RunIdentity.of(cfg, cache_dir)
    reused_code = None
    if main:  # rank 0 decides; the other processes of a launch follow the same files
        status, has_checkpoint = run_status(run_dir), bool(list_checkpoints(run_dir))
        reused_code = bind_run(run_dir, current, status, has_checkpoint, str(cfg.resume))
    if run_status(run_dir) == "finished":
        summary = read_json(run_dir / "summary.json")
        code = reused_code or summary.get("code_version", "unknown")
        note = "" if code == current.code else f" by prefopt {code} (now {current.code})"
        log.info("run already finished%s: %s (resume=never to train it again)", note, run_dir)
        return {**summary, "code_version": code}
    if main:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        atomic_write_text(run_dir / "overrides.yaml", OmegaConf.to_yaml(list(overrides or [])))
        atomic_write_json(run_dir / "summary.json", {"status": "running", "error": None})
    started = time.time()
    try:
        with graceful_stop() as stop:
            summary, extra = _train(cfg, run_dir, loss_fn, stop, on_step_end)
        gc.collect()  # free this run's models now (a compiled body refers back to its module)
    except BaseException as error:
        if main:
            _mark(
                run_dir, "interrupted" if isinstance(error, KeyboardInterrupt) else "failed", error
            )
        raise
    extra["wall_seconds"] = time.time() - started
    summary = {"status": "finished", "error": None, "code_version": current.code, **summary}
    if not main:
        return summary
    atomic_write_json(run_dir / "provenance.json", provenance(extra))
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


def _mark(run_dir: Path, status: str, error: BaseException) -> None:
    """Record an unfinished run's status and error in summary.json."""
    summary = {"status": status, "error": f"{type(error).__name__}: {error}"}
    atomic_write_json(run_dir / "summary.json", summary)


def _train(
    cfg: DictConfig, run_dir: Path, loss_fn, stop: StopRequest, on_step_end: Sequence[StepHook]
) -> tuple[dict, dict]:
    run = build_run(cfg, run_dir, loss_fn)
    accelerator = run.accelerator
    settings = run.settings
    sink = build_sink(cfg, run_dir) if accelerator.is_main_process else None
    trainer = Trainer(run, settings, Hooks(on_step_end=list(on_step_end), sink=sink))
    summary = trainer.fit(stop)
    if settings.trainer.save_policy and accelerator.is_main_process:
        model_setup.save_policy(
            accelerator.unwrap_model(trainer.policy), run.tokenizer, run_dir / "policy", cfg
        )
    extra = {
        **run.provenance,
        "tokens_seen": summary["tokens_seen"],
        "train_tokens_per_second": summary["tokens_seen"] / max(summary["train_seconds"], 1e-9),
    }
    return summary, extra
