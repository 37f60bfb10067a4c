"""Claim: on the same job, prefopt trains faster than TRL's DPOTrainer, and a sweep much faster.

    pip install -e ".[bench]"   # trl, in an environment of its own
    python experiments/bench_trl/bench.py throughput --repeats 3 --out results/performance
    python experiments/bench_trl/bench.py sweep --out results/performance

Each Config runs in a fresh process (its own peak RSS) on one model and data set (workload.py;
measure.py says what is timed). ``throughput``, ``memory``: the configurations of their RATIOS,
``--repeats`` rounds interleaved; every run's step-0 loss must be log 2 (dropout off, policy =
reference) and its mean chosen log-prob the first configuration's, to 1e-4. ``sweep``: SWEEP_LOSSES
x SWEEP_BETAS end to end by each SWEEP configuration. ``--preset gpu``: a 374M Llama in bf16, with
GPU memory; ``tiny_gpu``: its code path on a CPU. ``throughput`` and ``memory`` report each
configuration's FLOP/s by two counts (flops.py: the conventional 6N per token, and the FLOPs the job
requires) as fractions of the matrix-product rates measured in its own processes (ceiling.py) and,
on a known GPU, of the card's dense bf16 peak (model FLOPs utilisation, MFU).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import torch
from ceiling import gemm_shapes, measure_ceiling
from flops import flops_per_token, required_per_token
from measure import StepClock, peak_mib, summarise
from workload import PRESETS, Workload, prefopt_config, prepare, tokens_per_step

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

    @property
    def reference_every_step(self) -> bool:
        """A reference forward in every step (2N FLOPs per token): TRL without precomputation,
        prefopt's frozen_copy and lora_disabled."""
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
SWEEP = ["prefopt_cached", "trl_default", "trl_precompute"]
SWEEP_LOSSES = {  # prefopt's loss name -> TRL DPOTrainer's loss_type for the same loss
    "dpo": "sigmoid", "ipo": "ipo", "hinge": "hinge", "sppo_hard": "sppo_hard", "apo_zero": "apo_zero",
}  # fmt: skip
SWEEP_BETAS = (0.05, 0.1, 0.5)
BF16_PEAK = (  # dense bf16 peak FLOP/s by device name (first match): NVIDIA's data sheets
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
    ("H200 NVL", 835e12), ("H200", 989e12), ("A100", 312e12),
)  # fmt: skip
STEP0_TOLERANCE = 1e-4
FLOP_COUNTS = ("conventional_6n", "required")  # flops.py's two counts, in report order
SUMMARISED = ("tokens_per_second", "tokens_per_cpu_second", "peak_rss_mib", "setup_seconds")


def configurations(ratios: dict) -> list[str]:
    """The configurations that ``ratios`` (a RATIOS value) compares, in order."""
    return list(dict.fromkeys(name for pair in ratios.values() for name in pair))


def bf16_peak(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the device called ``name``; None where unknown (a CPU)."""
    return next((peak for key, peak in BF16_PEAK if key in name), None)


def run_one(config: Config, work: Workload, workdir: Path, run_dir: Path, loss=None) -> dict:
    """One training run of ``config``: StepClock's result and the step-0 metrics. ``loss``: a
    sweep run's (prefopt's loss name, beta), evaluated once after the last step (None: DPO at the
    workload's beta). prefopt's steps are timed by its ``on_step_end`` hook (step 1 started
    ``trainer.state.train_seconds`` before it); its tokens per step must be the workload's."""
    name, beta = loss or ("dpo", work.beta)
    if config.tool == "trl":
        from trl_side import dpo_config, train_trl

        args = (config.precompute, SWEEP_LOSSES[name], beta, loss is not None)
        return train_trl(work, workdir, dpo_config(work, run_dir / "trl", *args))
    clock, tokens, rows = StepClock(), [], []

    def on_step_end(trainer: Trainer, row: dict) -> None:
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


def fresh_run_dir(workdir: Path, prefix: str) -> Path:
    """A new directory for a configuration's runs, with a datasets cache of its own."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
    os.environ["HF_DATASETS_CACHE"] = str(run_dir / "hf_datasets")  # nothing from earlier runs
    return run_dir


def worker(
    name: str, work: Workload, workdir: Path, threads: int, sweep: bool, gemms: dict | None
) -> dict:
    """Configuration ``name`` in this fresh process, its output to a log file: one run, or with
    ``sweep`` all the sweep's runs one after another (prefopt's share a reference cache); then,
    with ``gemms`` (ceiling.gemm_shapes), the matrix-product rates (after the peak RSS is read)."""
    run_dir = fresh_run_dir(workdir, f"{name}_")
    with open(run_dir / "output.log", "w") as log:
        for stream in (sys.stdout, sys.stderr):
            os.dup2(log.fileno(), stream.fileno())
    torch.set_num_threads(threads)
    config, start = CONFIGS[name], time.perf_counter()
    if sweep:
        grid = [(loss, beta) for loss in SWEEP_LOSSES for beta in SWEEP_BETAS]
        runs = [run_one(config, work, workdir, run_dir / f"{n}_{b}", (n, b)) for n, b in grid]
        result = {"grid": grid, "runs": runs, "sweep_seconds": time.perf_counter() - start}
    else:
        result = run_one(config, work, workdir, run_dir)
    result["peak_rss_mib"] = peak_mib("peak_rss_bytes")
    if gemms:
        result["ceiling"] = measure_ceiling(gemms, work.precision, work.device)
    return result


def run_all(
    names: list[str], work: Workload, threads: int, repeats=1, sweep=False, gemms=None
) -> dict:
    """``repeats`` rounds of the configurations ``names``, interleaved, each run in a fresh
    process on one prepared model and data set (``gemms``: worker's); name -> list of results."""
    results: dict[str, list] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        for repeat in range(repeats):
            for name in names:
                started = time.perf_counter()
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    result = pool.apply(worker, (name, work, Path(tmp), threads, sweep, gemms))
                    pool.close()  # let the worker exit by itself, its resources released
                    pool.join()
                result["process_seconds"] = time.perf_counter() - started  # imports included
                results[name].append(result)
                print(f"repeat {repeat} {name}: {result['process_seconds']:.1f} s")
    return results


def check_step0(result: dict, name: str, reference: dict) -> dict:
    """Step-0 loss must be log 2 and the mean chosen log-prob the reference run's, to 1e-4."""
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


def giga_span(stats: dict) -> str:
    """A FLOP/s summary in GFLOP/s: median (min-max)."""
    return f"{stats['median'] / 1e9:.1f} ({stats['min'] / 1e9:.1f}-{stats['max'] / 1e9:.1f})"


def number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def both(counts: dict | None, spec: str, scale: float = 1.0) -> str:
    """A cell of the two FLOP counts: "conventional / required"."""
    if counts is None:
        return "-"
    return " / ".join(format(counts[count] / scale, spec) for count in FLOP_COUNTS)


# Markdown tables: header -> the cell of a row (the first column holds the row's name).
SUMMARY_COLUMNS = {
    "configuration": None,
    "tokens/s median (min-max)": lambda r: span(r["tokens_per_second"]),
    "spread": lambda r: f"{r['tokens_per_second']['spread']:.0%}",
    "tokens/CPU-s median (min-max)": lambda r: span(r["tokens_per_cpu_second"]),
    "peak RSS MiB": lambda r: f"{r['peak_rss_mib']['median']:.0f}",
    "GPU MiB before step 1": lambda r: number(r["setup_gpu_peak_mib"], ".0f"),
    "steps' peak GPU MiB": lambda r: number(r["steps_gpu_peak_mib"], ".0f"),
    "GFLOP/s (6N / required)": lambda r: both(r["flops_per_second"], ".1f", 1e9),
    "of largest-GEMM rate": lambda r: both(r["fraction_of"]["largest_gemm"], ".0%"),
    "of 2048^3 rate": lambda r: both(r["fraction_of"]["square_2048"], ".0%"),
    "of bf16 peak (MFU)": lambda r: both(r["fraction_of"]["bf16_peak"], ".1%"),
    "setup s": lambda r: f"{r['setup_seconds']['median']:.1f}",
}
RATIO_COLUMNS = {
    "ratio": None,
    "tokens/s (median ratio)": lambda r: f"{r['tokens_per_second']:.2f}x",
    "per repeat": lambda r: f"{r['per_repeat']['min']:.2f}-{r['per_repeat']['max']:.2f}",
    "tokens per CPU-s": lambda r: f"{r['tokens_per_cpu_second']:.2f}x",
    "peak RSS": lambda r: f"{r['peak_rss_mib']:.2f}",
    "steps' peak GPU memory": lambda r: number(r["steps_gpu_peak_mib"], ".2f"),
}
SWEEP_COLUMNS = {
    "tool": None,
    "sweep seconds (in process)": lambda r: f"{r['sweep_seconds']:.1f}",
    "process seconds (with imports)": lambda r: f"{r['process_seconds']:.1f}",
    "TRL / prefopt": lambda r: f"{r['speedup']:.2f}x",
}


def table(columns: dict, rows: dict) -> list[str]:
    """Markdown table lines: one row per ``rows`` item (name -> row), cells by ``columns``."""
    cells = list(columns.values())[1:]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + [f"| {' | '.join([n, *(c(r) for c in cells)])} |" for n, r in rows.items()]


def write(args, work: Workload, name: str, report: dict, lines: list[str]) -> None:
    """<name>.json (the command, the machine, the workload, then ``report``) and <name>.md (the
    command, then ``lines``) in ``args.out``; the markdown is printed too."""
    command = " ".join(["python", f"experiments/bench_trl/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    machine = {**hardware(), **versions(), "trl": version("trl") if find_spec("trl") else None}
    machine.update(torch_threads=args.threads, precision=work.precision)  # hardware(): the GPU
    header = {"command": command, "machine": machine, "workload": asdict(work)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{name}.json").write_text(json.dumps({**header, **report}, indent=1))
    text = "\n".join([f"Command: `{command}`", "", *lines]) + "\n"
    (Path(args.out) / f"{name}.md").write_text(text)
    print(text)


def summary_row(config: Config, results: list[dict], flops: dict, peak: float | None) -> dict:
    """A configuration's repeats summarised, with its GPU peaks, its FLOPs per token and FLOP/s by
    both counts (flops.py), the rates of its processes' products (medians over its repeats) and
    its FLOP/s as fractions of each, and of the bf16 ``peak`` (None where unknown: MFU)."""
    row = {key: summarise([r[key] for r in results]) for key in SUMMARISED}
    every_step = config.reference_every_step
    per_token = {
        "conventional_6n": flops["policy"] + flops["reference"] * every_step,
        "required": required_per_token(flops, every_step, config.lora),
    }
    rate = {count: row["tokens_per_second"]["median"] * n for count, n in per_token.items()}
    ceilings = {
        gemm: statistics.median(r["ceiling"][gemm]["flops_per_second"] for r in results)
        for gemm in results[0]["ceiling"]
    }
    ceilings["bf16_peak"] = peak
    fractions = {
        name: None if c is None else {count: rate[count] / c for count in rate}
        for name, c in ceilings.items()
    }
    gpu = {key: results[0][key] for key in ("setup_gpu_peak_mib", "steps_gpu_peak_mib")}
    return {
        **row, **gpu, "model_flops_per_token": per_token["conventional_6n"],
        "required_flops_per_token": per_token["required"], "flops_per_second": rate,
        "ceiling_flops_per_second": ceilings, "fraction_of": fractions,
        "mfu": None if peak is None else fractions["bf16_peak"]["conventional_6n"],
    }  # fmt: skip


def flops_lines(flops: dict, gemms: dict, machine: dict, peak: float | None) -> list[str]:
    """The report's account of its FLOP counts and of the rates it divides them by."""
    rates = "; ".join(
        f"{gemm} {'x'.join(map(str, gemms[gemm]))}: {giga_span(stats)} GFLOP/s"
        for gemm, stats in machine.items()
    )
    peak_text = "none known for this device" if peak is None else f"{peak:.3g} FLOP/s"
    return [
        f"FLOPs per trained token (flops.py): conventional 6N + 2N per reference forward, N = "
        f"{flops['n'] / 1e6:.2f}M; required (3 + reference) x 2 x (N_blocks + H x R/T) (LoRA: "
        f"2 + reference), blocks' matrices N_blocks = {flops['n_blocks'] / 1e6:.2f}M, LM head "
        f"H = {flops['head'] / 1e6:.2f}M on response positions only, R/T = "
        f"{flops['response_share']:.3f}; reference = 1 where it runs in every step.",
        "",
        f"Matrix products (ceiling.py; M x K x N, median (min-max) over every configuration's "
        f"processes, each measured right after its timed steps): {rates}. Each row's fractions use "
        f"its own processes' medians. Dense bf16 datasheet peak: {peak_text}.",
    ]


def ratio_row(summary: dict, raw: dict, ours: str, theirs: str) -> dict:
    """Configuration ``ours`` over ``theirs``: the ratios of the summaries' medians, of tokens/s
    per repeat and of the steps' GPU peaks (None without a GPU)."""
    a, b, pairs = summary[ours], summary[theirs], zip(raw[ours], raw[theirs], strict=True)
    row = {key: a[key]["median"] / b[key]["median"] for key in SUMMARISED}
    row["per_repeat"] = summarise(
        [p["tokens_per_second"] / t["tokens_per_second"] for p, t in pairs]
    )
    gpu = b["steps_gpu_peak_mib"]
    return {**row, "steps_gpu_peak_mib": a["steps_gpu_peak_mib"] / gpu if gpu else None}


def measure(args, work: Workload, ratios: dict) -> None:
    """``throughput`` or ``memory``: the configurations of ``ratios``, checked at step 0,
    summarised and compared."""
    names, flops = configurations(ratios), flops_per_token(work)
    gemms = gemm_shapes(flops, tokens_per_step(work))
    raw = run_all(names, work, args.threads, args.repeats, gemms=gemms)
    checks = {
        name: [check_step0(r, name, raw[names[0]][0]) for r in rs] for name, rs in raw.items()
    }
    device = torch.cuda.get_device_name() if work.device == "cuda" else "cpu"
    peak = bf16_peak(device)
    summary = {name: summary_row(CONFIGS[name], rs, flops, peak) for name, rs in raw.items()}
    rows = {label: ratio_row(summary, raw, *pair) for label, pair in ratios.items()}
    machine = {
        gemm: summarise([r["ceiling"][gemm]["flops_per_second"] for rs in raw.values() for r in rs])
        for gemm in gemms
    }  # over every process
    report = {
        "flops": {**flops, "device": device, "bf16_peak_flops": peak},
        "ceiling": {"shapes_mkn": gemms, "flops_per_second": machine}, "summary": summary,
    }  # fmt: skip
    write(args, work, args.command, {**report, "ratios": rows, "step0_checks": checks, "raw": raw}, [
        f"Device: {device}, {work.precision}, torch threads: {args.threads}.",
        "",
        *flops_lines(flops, gemms, machine, peak),
        "",
        *table(SUMMARY_COLUMNS, summary),
        "",
        *table(RATIO_COLUMNS, {f"{label}: {a} / {b}": rows[label] for label, (a, b) in ratios.items()}),
    ])  # fmt: skip


def sweep(args, work: Workload) -> None:
    """SWEEP_LOSSES x SWEEP_BETAS run by each SWEEP configuration, end to end."""
    results = {name: rs[0] for name, rs in run_all(SWEEP, work, args.threads, sweep=True).items()}
    for result in results.values():
        result["speedup"] = result["sweep_seconds"] / results["prefopt_cached"]["sweep_seconds"]
    runs = len(SWEEP_LOSSES) * len(SWEEP_BETAS)
    write(args, work, "sweep", {"runs": runs, "raw": results}, [
        f"{runs} runs (losses {list(SWEEP_LOSSES)} x betas {list(SWEEP_BETAS)}), "
        f"{work.steps} steps of {work.batch_size} pairs each.",
        "",
        *table(SWEEP_COLUMNS, results),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=[*RATIOS, "sweep"])
    parser.add_argument("--out", default="results/performance")
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu", help="the job's shape")
    parser.add_argument("--steps", type=int, default=Workload.steps)
    parser.add_argument("--batch-size", type=int, help="pairs per step (default: the preset's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of throughput or memory")
    parser.add_argument("--compile", action="store_true", help="throughput: + trainer.compile")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    work = replace(preset, steps=args.steps, batch_size=args.batch_size or preset.batch_size)
    if args.command == "sweep":
        return sweep(args, work)
    measure(args, work, {**RATIOS[args.command], **(COMPILED if args.compile else {})})


if __name__ == "__main__":
    main()
