"""Claim: on the same job, prefopt trains faster than TRL's DPOTrainer, and a sweep much faster.

    pip install -e ".[bench]"   # trl, in an environment of its own
    python experiments/bench_trl/bench.py throughput --repeats 3 --out results/performance
    python experiments/bench_trl/bench.py sweep --out results/performance

Each Config runs in a fresh process (its own peak RSS) on one model and data set (workload.py;
measure.py says what is timed). ``throughput``: THROUGHPUT, ``--repeats`` rounds interleaved so
that other load hits both tools alike, the ratios of COMPARISONS; each run's step-0 loss must be
log 2 (dropout off, policy = reference) and its mean chosen log-prob prefopt's, to 1e-4. ``sweep``:
SWEEP_LOSSES x SWEEP_BETAS end to end, one process per SWEEP configuration (prefopt's runs share a
reference cache). ``memory``: the steps' peak GPU memory of MEMORY. ``--preset gpu``: a 374M Llama
in bf16, with peak GPU memory and model FLOPs utilisation (6N per trained token, 2N per
reference-forward token, against the card's dense bf16 peak); ``tiny_gpu``: that path on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import torch
from measure import StepClock, peak_mib, steady_throughput, summarise
from workload import PRESETS, Workload, flops_per_token, prefopt_config, prepare, tokens_per_step

from prefopt.trainer.loop import Trainer
from prefopt.trainer.provenance import hardware, versions
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
    reference_every_step: bool = False  # a reference forward per step (2N FLOPs per token)

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
        Config("prefopt_frozen_copy", "prefopt", "frozen_copy", reference_every_step=True),
        Config("trl_default", "trl", reference_every_step=True),
        Config("prefopt_cached", "prefopt"),
        Config("trl_precompute", "trl", precompute=True),
        Config("prefopt_cached_compile", "prefopt", compile=True),
        Config("prefopt_lora_disabled", "prefopt", "lora_disabled", lora=True),
        Config("prefopt_lora_cached", "prefopt", lora=True),
    )
}
THROUGHPUT = ["prefopt_frozen_copy", "trl_default", "prefopt_cached", "trl_precompute"]
COMPARISONS = {  # label -> (prefopt's configuration, TRL's)
    "a_reference_every_step": ("prefopt_frozen_copy", "trl_default"),
    "b_each_at_its_best": ("prefopt_cached", "trl_precompute"),
}
SWEEP = ["prefopt_cached", "trl_default", "trl_precompute"]
MEMORY = ["prefopt_lora_disabled", "prefopt_lora_cached"]  # LoRA with a reference, without one
SWEEP_LOSSES = {  # prefopt's loss name -> TRL DPOTrainer's loss_type for the same loss
    "dpo": "sigmoid", "ipo": "ipo", "hinge": "hinge", "sppo_hard": "sppo_hard", "apo_zero": "apo_zero",
}  # fmt: skip
SWEEP_BETAS = (0.05, 0.1, 0.5)
BF16_PEAK = (  # dense bf16 peak FLOP/s by device name (first match): NVIDIA's data sheets
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
    ("H200 NVL", 835e12), ("H200", 989e12), ("A100", 312e12),
)  # fmt: skip
STEP0_TOLERANCE = 1e-4


def bf16_peak(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the device called ``name``; None where unknown (a CPU)."""
    return next((peak for key, peak in BF16_PEAK if key in name), None)


def run_one(config: Config, work: Workload, workdir: Path, run_dir: Path, loss=None) -> dict:
    """One training run of ``config``; ``loss`` = (prefopt's loss name, beta) of a sweep's run
    (None: DPO at the workload's beta; a sweep's runs evaluate once after the last step)."""
    name, beta = loss or ("dpo", work.beta)
    if config.tool == "trl":
        from trl_side import dpo_config, train_trl

        out_dir, trl_loss = run_dir / "trl", SWEEP_LOSSES[name]
        args = dpo_config(work, out_dir, config.precompute, trl_loss, beta, loss is not None)
        return train_trl(work, workdir, args)
    cache_dir = workdir / "sweep_cache" if loss else run_dir / "cache"  # a sweep shares one cache
    cfg = prefopt_config(work, workdir, cache_dir, config.overrides(), name, beta)
    return train_prefopt(cfg, run_dir / "run")


def train_prefopt(cfg, run_dir: Path) -> dict:
    """One prefopt run through ``run_training``, timed by its ``on_step_end`` hook: StepClock's
    records, the tokens of each step and the step-0 metrics (computed before the first update).
    Step 1 started ``trainer.state.train_seconds`` (the time in its train step) before its hook."""
    clock, tokens, rows = StepClock(), [], []

    def on_step_end(trainer: Trainer, row: dict) -> None:
        clock.step_end(time.perf_counter() - trainer.state.train_seconds)
        tokens.append(trainer.state.tokens_seen - sum(tokens))
        rows.append(row)

    run_training(cfg, run_dir, on_step_end=[on_step_end])
    step0 = {"step0_loss": rows[0]["loss"], "step0_chosen_logps": rows[0]["chosen_logps"]}
    return {**clock.result(), "tokens": tokens, **step0}  # chosen_logps: the batch's mean


def fresh_run_dir(workdir: Path, prefix: str) -> Path:
    """A new directory for a configuration's runs, with a datasets cache of its own."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
    os.environ["HF_DATASETS_CACHE"] = str(run_dir / "hf_datasets")  # nothing from earlier runs
    return run_dir


def worker(name: str, work: Workload, workdir: Path, threads: int, sweep: bool) -> dict:
    """Configuration ``name`` in this fresh process, its output to a log file: one run, or with
    ``sweep`` all the sweep's runs one after another."""
    run_dir = fresh_run_dir(workdir, f"{name}_")
    with open(run_dir / "output.log", "w") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    torch.set_num_threads(threads)
    config, start = CONFIGS[name], time.perf_counter()
    if sweep:
        grid = [(loss, beta) for loss in SWEEP_LOSSES for beta in SWEEP_BETAS]
        runs = [run_one(config, work, workdir, run_dir / f"{n}_{b}", (n, b)) for n, b in grid]
        result = {"grid": grid, "runs": runs, "sweep_seconds": time.perf_counter() - start}
    else:
        result = run_one(config, work, workdir, run_dir)
    return {**result, "peak_rss_mib": peak_mib("peak_rss_bytes")}


def run_all(names: list[str], work: Workload, threads: int, repeats=1, sweep=False) -> dict:
    """``repeats`` rounds of the configurations ``names``, interleaved, each run in a fresh
    process on one prepared model and data set; name -> list of results."""
    results: dict[str, list] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        for repeat in range(repeats):
            for name in names:
                started = time.perf_counter()
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    result = pool.apply(worker, (name, work, Path(tmp), threads, sweep))
                    pool.close()  # let the worker exit by itself, its resources released
                    pool.join()
                result["process_seconds"] = time.perf_counter() - started  # imports included
                results[name].append(result)
                print(f"repeat {repeat} {name}: {result['process_seconds']:.1f} s")
    return results


def command_line() -> str:
    return " ".join(["python", f"experiments/bench_trl/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def report_header(args, work: Workload) -> dict:
    """The command, the machine and the workload: the first keys of every report."""
    machine = {**hardware(), **versions(), "trl": version("trl") if find_spec("trl") else None}
    device = torch.cuda.get_device_name() if work.device == "cuda" else "cpu"
    machine.update(torch_threads=args.threads, precision=work.precision, device=device)
    return {"command": command_line(), "machine": machine, "workload": asdict(work)}


def check_step0(result: dict, name: str, reference: dict) -> dict:
    """Step-0 loss must be log 2 and the mean chosen log-prob equal to prefopt's, to 1e-4."""
    loss_error = abs(result["step0_loss"] - math.log(2))
    logps_error = abs(result["step0_chosen_logps"] - reference["step0_chosen_logps"])
    scale = max(1.0, abs(reference["step0_chosen_logps"]))
    if loss_error > STEP0_TOLERANCE or logps_error > STEP0_TOLERANCE * scale:
        raise RuntimeError(
            f"{name}: step-0 loss {result['step0_loss']} (log 2 = {math.log(2):.6f}) or chosen "
            f"logps {result['step0_chosen_logps']} vs {reference['step0_chosen_logps']} differ: "
            "not the same work"
        )
    return {"loss_minus_log2": loss_error, "chosen_logps_difference": logps_error}


def span(stats: dict) -> str:
    return f"{stats['median']:.0f} ({stats['min']:.0f}-{stats['max']:.0f})"


def number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# Markdown tables: header -> the cell of a row (the first column holds the row's name).
THROUGHPUT_COLUMNS = {
    "configuration": None,
    "tokens/s median (min-max)": lambda r: span(r["tokens_per_second"]),
    "spread": lambda r: f"{r['tokens_per_second']['spread']:.0%}",
    "tokens/CPU-s median (min-max)": lambda r: span(r["tokens_per_cpu_second"]),
    "peak RSS MiB": lambda r: f"{r['peak_rss_mib']['median']:.0f}",
    "steps' peak GPU MiB": lambda r: number(r["steps_gpu_peak_mib"], ".0f"),
    "MFU": lambda r: number(r["mfu"], ".1%"),
    "setup s": lambda r: f"{r['setup_seconds']['median']:.1f}",
}
COMPARISON_COLUMNS = {
    "comparison": None,
    "prefopt/TRL tokens/s (median ratio)": lambda r: f"{r['median_ratio']:.2f}x",
    "per repeat": lambda r: f"{r['per_repeat']['min']:.2f}-{r['per_repeat']['max']:.2f}",
    "prefopt/TRL tokens per CPU-s": lambda r: f"{r['cpu_time_ratio']:.2f}x",
    "RSS ratio": lambda r: f"{r['memory_ratio']:.2f}",
}
SWEEP_COLUMNS = {
    "tool": None,
    "sweep seconds (in process)": lambda r: f"{r['sweep_seconds']:.1f}",
    "process seconds (with imports)": lambda r: f"{r['process_seconds']:.1f}",
    "TRL / prefopt": lambda r: f"{r['speedup']:.2f}x",
}
MEMORY_COLUMNS = {
    "configuration": None,
    "steps' peak GPU MiB": lambda r: str(r["steps_gpu_peak_mib"]),
    "before the first step MiB": lambda r: str(r["setup_gpu_peak_mib"]),
    "peak RSS MiB": lambda r: f"{r['peak_rss_mib']:.0f}",
}


def table(columns: dict, rows: dict) -> list[str]:
    """Markdown table lines: one row per ``rows`` item (name -> row), cells by ``columns``."""
    cells = list(columns.values())[1:]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + [f"| {' | '.join([n, *(c(r) for c in cells)])} |" for n, r in rows.items()]


def write(out: Path, name: str, report: dict, lines: list[str]) -> None:
    """<name>.json and <name>.md (the command first) in ``out``; the markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    text = "\n".join([f"Command: `{command_line()}`", "", *lines]) + "\n"
    (out / f"{name}.md").write_text(text)
    print(text)


def summary_row(config: Config, results: list[dict], flops: dict, peak: float | None) -> dict:
    """A configuration's repeats summarised, with its model FLOPs per token and MFU."""
    keys = ("tokens_per_second", "tokens_per_cpu_second", "peak_rss_mib", "setup_seconds")
    row = {key: summarise([r[key] for r in results]) for key in keys}
    per_token = flops["policy"] + flops["reference"] * config.reference_every_step
    mfu = None if peak is None else row["tokens_per_second"]["median"] * per_token / peak
    gpu_mib = results[0]["steps_gpu_peak_mib"]
    return {**row, "steps_gpu_peak_mib": gpu_mib, "model_flops_per_token": per_token, "mfu": mfu}


def comparison_row(summary: dict, raw: dict, ours: str, theirs: str) -> dict:
    """prefopt's configuration ``ours`` against TRL's ``theirs``: ratios of medians, per repeat."""

    def ratio(key: str) -> float:
        return summary[ours][key]["median"] / summary[theirs][key]["median"]

    pairs = zip(raw[ours], raw[theirs], strict=True)
    per_repeat = [p["tokens_per_second"] / t["tokens_per_second"] for p, t in pairs]
    return {
        "cpu_time_ratio": ratio("tokens_per_cpu_second"),
        "median_ratio": ratio("tokens_per_second"),
        "per_repeat": summarise(per_repeat),
        "memory_ratio": ratio("peak_rss_mib"),
    }


def throughput(args, work: Workload) -> None:
    tokens = tokens_per_step(work)
    names = THROUGHPUT + (["prefopt_cached_compile"] if args.compile else [])
    raw = run_all(names, work, args.threads, args.repeats)
    for name, results in raw.items():
        for result in results:
            if CONFIGS[name].tool == "prefopt" and result["tokens"] != tokens:
                raise RuntimeError(f"{name} trained on {result['tokens']}, expected {tokens}")
            result.update(steady_throughput(result["step_ends"], tokens))
            cpu = steady_throughput(result["step_ends_cpu"], tokens)
            result["tokens_per_cpu_second"] = cpu["tokens_per_second"]
    reference = raw["prefopt_frozen_copy"][0]
    checks = {name: [check_step0(r, name, reference) for r in rs] for name, rs in raw.items()}
    header, flops = report_header(args, work), flops_per_token(work)
    device = header["machine"]["device"]
    peak = bf16_peak(device)
    summary = {name: summary_row(CONFIGS[name], rs, flops, peak) for name, rs in raw.items()}
    ratios = {label: comparison_row(summary, raw, *pair) for label, pair in COMPARISONS.items()}
    report = {
        **header,
        "flops": {**flops, "device": device, "bf16_peak_flops": peak},
        "tokens_per_step": tokens,
        "summary": summary,
        "ratios": ratios,
        "step0_checks": checks,
        "raw": raw,
    }
    write(Path(args.out), "throughput", report, [
        f"Device: {device}; model FLOPs per token 6N trained + 2N per reference forward, "
        f"N = {flops['n'] / 1e6:.1f}M; MFU against a dense bf16 peak of {peak or 0:.3g} FLOP/s "
        "(0: unknown, not reported).",
        "",
        *table(THROUGHPUT_COLUMNS, summary),
        "",
        *table(COMPARISON_COLUMNS, ratios),
    ])  # fmt: skip


def sweep(args, work: Workload) -> None:
    results = {name: rs[0] for name, rs in run_all(SWEEP, work, args.threads, sweep=True).items()}
    for result in results.values():
        result["speedup"] = result["sweep_seconds"] / results["prefopt_cached"]["sweep_seconds"]
    runs = len(SWEEP_LOSSES) * len(SWEEP_BETAS)
    report = {**report_header(args, work), "runs": runs}
    for key in ("sweep_seconds", "process_seconds", "speedup"):
        report[key] = {name: result[key] for name, result in results.items()}
    write(Path(args.out), "sweep", {**report, "raw": results}, [
        f"{runs} runs (losses {list(SWEEP_LOSSES)} x betas {list(SWEEP_BETAS)}), "
        f"{work.steps} steps of {work.batch_size} pairs each.",
        "",
        *table(SWEEP_COLUMNS, results),
    ])  # fmt: skip


def memory(args, work: Workload) -> None:
    results = {name: rs[0] for name, rs in run_all(MEMORY, work, args.threads).items()}
    with_ref, without = (results[name]["steps_gpu_peak_mib"] for name in MEMORY)
    ratio = None if not without else with_ref / without
    report = {**report_header(args, work), "ratio_lora_reference_to_none": ratio, "raw": results}
    write(Path(args.out), "memory", report, [
        *table(MEMORY_COLUMNS, results),
        "",
        f"LoRA reference / no reference, steps' peak GPU memory: {ratio}",
    ])  # fmt: skip


COMMANDS = {"throughput": throughput, "sweep": sweep, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("--out", default="results/performance")
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu", help="the job's shape")
    parser.add_argument("--steps", type=int, default=Workload.steps)
    parser.add_argument("--batch-size", type=int, help="pairs per step (default: the preset's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="throughput's rounds")
    parser.add_argument("--compile", action="store_true", help="throughput: + trainer.compile")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    batch_size = args.batch_size or preset.batch_size
    COMMANDS[args.command](args, replace(preset, steps=args.steps, batch_size=batch_size))


if __name__ == "__main__":
    main()
