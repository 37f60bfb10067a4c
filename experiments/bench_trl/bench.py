"""Claim: on the same job, prefopt trains faster than TRL's DPOTrainer, and a sweep much faster.

    python experiments/bench_trl/bench.py throughput --repeats 3 --out results/performance
    python experiments/bench_trl/bench.py sweep --out results/performance

Each Config runs in a fresh process on one job (workload.py; measure.py: what is timed; report.py:
what is reported): ``throughput`` and ``memory`` the pairs of RATIOS[command] in ``--repeats``
interleaved rounds, ``sweep`` SWEEP_GRID by each SWEEP configuration. ``--preset gpu``: a 374M Llama
in bf16; ``tiny_gpu``: its code path on a CPU. TRL: ``pip install -e ".[bench]"``, apart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from ceiling import gemm_shapes, measure_ceiling
from flops import flops_per_token
from measure import StepClock, peak_mib
from report import measure_report, sweep_report
from workload import PRESETS, Workload, prefopt_config, prepared, tokens_per_step

from prefopt.trainer.loop import Trainer
from prefopt.trainer.run import run_training


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: the tool and how it gets the reference log-probs."""

    name: str
    tool: str  # prefopt or trl
    reference: str = "cached"  # prefopt's trainer.reference: frozen_copy, cached or lora_disabled
    precompute: bool = False  # TRL's precompute_ref_log_probs (else a reference forward per step)
    lora: bool = False  # prefopt trains a LoRA adapter instead of the whole model
    compile: bool = False  # prefopt's trainer.compile

    @property
    def reference_every_step(self) -> bool:
        """A reference forward in every step: TRL without precomputation, prefopt but cached."""
        return not self.precompute if self.tool == "trl" else self.reference != "cached"

    def overrides(self) -> list[str]:
        """prefopt's run-config overrides for this configuration."""
        return [
            f"trainer.reference={self.reference}",
            f"model.lora.enabled={self.lora}",
            f"trainer.compile={self.compile}",
        ]


CONFIGS = {
    config.name: config
    for config in (
        Config("prefopt_frozen_copy", "prefopt", "frozen_copy"),
        Config("trl_default", "trl"),
        Config("prefopt_cached", "prefopt"),
        Config("trl_precompute", "trl", precompute=True),
        Config("prefopt_cached_compile", "prefopt", compile=True),
        Config("prefopt_lora_disabled", "prefopt", "lora_disabled", lora=True),
        Config("prefopt_lora_cached", "prefopt", lora=True),
    )
}
RATIOS = {  # command -> label -> (a configuration, the one it is divided by)
    "throughput": {
        "a_reference_every_step": ("prefopt_frozen_copy", "trl_default"),
        "b_each_at_its_best": ("prefopt_cached", "trl_precompute"),
    },
    "memory": {"lora_reference_to_none": ("prefopt_lora_disabled", "prefopt_lora_cached")},
}
COMPILED = {"c_compiled_to_eager": ("prefopt_cached_compile", "prefopt_cached")}  # --compile
SWEEP = ["prefopt_cached", "trl_default", "trl_precompute"]  # the first is the sweep's baseline
SWEEP_LOSSES = {  # prefopt's loss name -> TRL DPOTrainer's loss_type for the same loss
    "dpo": "sigmoid", "ipo": "ipo", "hinge": "hinge", "sppo_hard": "sppo_hard", "apo_zero": "apo_zero",
}  # fmt: skip
SWEEP_BETAS = (0.05, 0.1, 0.5)  # each loss's betas in the sweep
SWEEP_GRID = [(loss, beta) for loss in SWEEP_LOSSES for beta in SWEEP_BETAS]  # a sweep's runs
OPTIONS = {  # the scripts' command line: name -> argparse's keywords (each script picks its names)
    "command": {"choices": [*RATIOS, "sweep"]},
    "--out": {"default": "results/performance"},
    "--preset": {"choices": list(PRESETS), "default": "cpu", "help": "the job's shape"},
    "--steps": {"type": int, "default": Workload.steps},
    "--batch-size": {"type": int, "help": "pairs per step (default: the preset's)"},
    "--threads": {"type": int, "default": os.cpu_count(), "help": "torch threads"},
    "--repeats": {"type": int, "default": 3, "help": "rounds of throughput or memory"},
    "--compile": {"action": "store_true", "help": "throughput: + trainer.compile"},
    "--top": {"type": int, "default": 12, "help": "operators listed per configuration"},
}


def parse_args(doc: str, names: list[str], **defaults) -> argparse.Namespace:
    """The command line of the script ``doc`` describes: OPTIONS' ``names``, with ``defaults``
    (destination -> value) in place of OPTIONS' own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    for name in names:
        parser.add_argument(name, **OPTIONS[name])
    parser.set_defaults(**defaults)
    return parser.parse_args()


def configurations(ratios: dict) -> list[str]:
    """The configurations that ``ratios`` (a RATIOS value) compares, in order."""
    return list(dict.fromkeys(name for pair in ratios.values() for name in pair))


def run_one(config: Config, work: Workload, workdir: Path, run_dir: Path, loss=None) -> dict:
    """One training run of ``config``: StepClock's result and the step-0 metrics. ``loss``: a sweep
    run's (prefopt's loss name, beta), evaluated after the last step (None: DPO, workload's beta)."""
    name, beta = loss or ("dpo", work.beta)
    if config.tool == "trl":
        from trl_side import dpo_config, train_trl

        args = (config.precompute, SWEEP_LOSSES[name], beta, loss is not None)
        return train_trl(work, workdir, dpo_config(work, run_dir / "trl", *args))
    clock, tokens, rows = StepClock(), [], []

    def on_step_end(trainer: Trainer, row: dict) -> None:
        """Note the step's end (training began ``train_seconds`` ago), its tokens and its row."""
        clock.step_end(time.perf_counter() - trainer.state.train_seconds)
        tokens.append(trainer.state.tokens_seen - sum(tokens))
        rows.append(row)

    cache_dir = workdir / "sweep_cache" if loss else run_dir / "cache"  # a sweep shares one cache
    cfg = prefopt_config(work, workdir, cache_dir, config.overrides(), name, beta)
    run_training(cfg, run_dir / "run", on_step_end=[on_step_end])
    if tokens != tokens_per_step(work):
        raise RuntimeError(f"{config.name} trained on {tokens}, expected {tokens_per_step(work)}")
    step0 = {"step0_loss": rows[0]["loss"], "step0_chosen_logps": rows[0]["chosen_logps"]}
    return {**clock.result(tokens), "tokens": tokens, **step0}  # chosen_logps: the batch's mean


def run_sweep(config: Config, work: Workload, workdir: Path, run_dir: Path) -> list[dict]:
    """``run_one`` of each SWEEP_GRID run, one after another (prefopt's share a reference cache)."""
    return [run_one(config, work, workdir, run_dir / f"{n}_{b}", (n, b)) for n, b in SWEEP_GRID]


def fresh_run_dir(workdir: Path, prefix: str) -> Path:
    """A new directory for a configuration's runs, with a datasets cache of its own."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
    os.environ["HF_DATASETS_CACHE"] = str(run_dir / "hf_datasets")  # nothing from earlier runs
    return run_dir


def worker(name: str, work: Workload, workdir: Path, threads: int, sweep: bool, gemms) -> dict:
    """Configuration ``name`` in this fresh process, logging to a file: one run or (``sweep``) the
    sweep's, its peak RSS, then the rates of the products ``gemms`` (ceiling.gemm_shapes) if any."""
    run_dir = fresh_run_dir(workdir, f"{name}_")
    with open(run_dir / "output.log", "w") as log:
        for stream in (sys.stdout, sys.stderr):
            os.dup2(log.fileno(), stream.fileno())
    torch.set_num_threads(threads)
    config, start = CONFIGS[name], time.perf_counter()
    if sweep:
        runs = run_sweep(config, work, workdir, run_dir)
        result = {"grid": SWEEP_GRID, "runs": runs, "sweep_seconds": time.perf_counter() - start}
    else:
        result = run_one(config, work, workdir, run_dir)
    result["peak_rss_mib"] = peak_mib("peak_rss_bytes")
    if gemms:
        result["ceiling"] = measure_ceiling(gemms, work.precision, work.device)
    return result


def run_all(names: list[str], work: Workload, threads: int, repeats=1, sweep=False, gemms=None):
    """``repeats`` rounds of the configurations ``names``, interleaved, each run in a fresh
    process on one prepared model and data set (``gemms``: worker's); name -> list of results."""
    results: dict[str, list] = {name: [] for name in names}
    with prepared(work) as workdir:
        for repeat in range(repeats):
            for name in names:
                started, spawn = time.perf_counter(), multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:  # the worker exits itself
                    job = pool.submit(worker, name, work, workdir, threads, sweep, gemms)
                result = job.result()
                result["process_seconds"] = time.perf_counter() - started  # imports included
                results[name].append(result)
                print(f"repeat {repeat} {name}: {result['process_seconds']:.1f} s")
    return results


def main() -> None:
    """Run the command the command line names."""
    options = ["command", "--out", "--preset", "--steps", "--batch-size", "--threads", "--repeats"]
    args = parse_args(__doc__, [*options, "--compile"])
    preset = PRESETS[args.preset]
    work = replace(preset, steps=args.steps, batch_size=args.batch_size or preset.batch_size)
    if args.command == "sweep":
        raw = run_all(SWEEP, work, args.threads, sweep=True)
        return sweep_report(args, work, raw, SWEEP_LOSSES, SWEEP_BETAS)
    ratios = {**RATIOS[args.command], **(COMPILED if args.compile else {})}
    flops = flops_per_token(work)
    gemms = gemm_shapes(flops, tokens_per_step(work))
    raw = run_all(configurations(ratios), work, args.threads, args.repeats, gemms=gemms)
    measure_report(args, work, CONFIGS, ratios, raw, flops, gemms)


if __name__ == "__main__":
    main()
