"""bench.py's reports, <command>.json and .md: each run's step 0 checked to be the same work (loss
log 2: dropout off, policy = reference; the mean chosen log-prob the first configuration's), the
repeats summarised and compared, FLOP/s by flops.py's two counts as fractions of ceiling.py's
matrix-product rates and, on a known GPU, of its dense bf16 peak (model FLOPs utilisation, MFU)."""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import asdict
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import torch
from flops import required_per_token
from measure import summarise

from prefopt.results.store import atomic_write_text
from prefopt.trainer.provenance import hardware, versions

BF16_PEAK = (  # dense bf16 peak FLOP/s by device name (first match): NVIDIA's data sheets
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
    ("H200 NVL", 835e12), ("H200", 989e12), ("A100", 312e12),
)  # fmt: skip
FLOP_COUNTS = ("conventional_6n", "required")  # flops.py's two counts, in report order
SUMMARISED = ("tokens_per_second", "tokens_per_cpu_second", "peak_rss_mib", "setup_seconds")
STEP0_TOLERANCE = 1e-4  # step 0: |loss - log 2| and the chosen log-probs' (relative) difference
GPU_PEAKS = ("setup_gpu_peak_mib", "steps_gpu_peak_mib")  # StepClock's, None without a GPU


def bf16_peak(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the device called ``name``; None where unknown (a CPU)."""
    return next((peak for key, peak in BF16_PEAK if key in name), None)


def span(stats: dict, spec: str = ".0f", scale: float = 1.0) -> str:
    """A summary's median (min-max), each divided by ``scale``."""
    low, median, high = (format(stats[key] / scale, spec) for key in ("min", "median", "max"))
    return f"{median} ({low}-{high})"


def number(value: float | None, spec: str) -> str:
    """``value`` formatted, "-" for None."""
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


def write(args, work, name: str, report: dict, blocks: list) -> None:
    """<name>.json (the command, the machine, the workload, then ``report``) and <name>.md (the
    command, then ``blocks``, each a paragraph or a list of lines) in ``args.out``; printed too."""
    command = " ".join(["python", f"experiments/bench_trl/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    machine = {**hardware(), **versions(), "trl": version("trl") if find_spec("trl") else None}
    machine.update(torch_threads=args.threads, precision=work.precision)  # hardware(): the GPU
    header = {"command": command, "machine": machine, "workload": asdict(work)}
    atomic_write_text(Path(args.out) / f"{name}.json", json.dumps({**header, **report}, indent=1))
    paragraphs = [
        b if isinstance(b, str) else "\n".join(b) for b in [f"Command: `{command}`", *blocks]
    ]
    text = "\n\n".join(paragraphs) + "\n"
    atomic_write_text(Path(args.out) / f"{name}.md", text)
    print(text)


def ceiling_rates(results: list[dict], gemm: str) -> list[float]:
    """The FLOP/s that ``results``' processes measured for the product ``gemm``."""
    return [result["ceiling"][gemm]["flops_per_second"] for result in results]


def summary_row(config, results: list[dict], flops: dict, peak: float | None) -> dict:
    """A Config's repeats summarised: GPU peaks, FLOPs per token and FLOP/s by both counts, its
    processes' product rates (medians) and the bf16 ``peak`` (None: unknown), FLOP/s over each."""
    row = {key: summarise([r[key] for r in results]) for key in SUMMARISED}
    every_step = config.reference_every_step
    per_token = {
        "conventional_6n": flops["policy"] + flops["reference"] * every_step,
        "required": required_per_token(flops, every_step, config.lora),
    }
    rate = {count: row["tokens_per_second"]["median"] * n for count, n in per_token.items()}
    ceilings = {
        gemm: statistics.median(ceiling_rates(results, gemm)) for gemm in results[0]["ceiling"]
    }
    ceilings["bf16_peak"] = peak
    fractions = {
        name: None if c is None else {count: rate[count] / c for count in rate}
        for name, c in ceilings.items()
    }
    return {
        **row, **{key: results[0][key] for key in GPU_PEAKS},
        "model_flops_per_token": per_token["conventional_6n"],
        "required_flops_per_token": per_token["required"], "flops_per_second": rate,
        "ceiling_flops_per_second": ceilings, "fraction_of": fractions,
        "mfu": None if peak is None else fractions["bf16_peak"]["conventional_6n"],
    }  # fmt: skip


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


def flops_text(flops: dict, gemms: dict, machine: dict, peak: float | None) -> list[str]:
    """The report's account of its FLOP counts and of the rates it divides them by: 2 paragraphs."""
    rates = "; ".join(
        f"{gemm} {'x'.join(map(str, gemms[gemm]))}: {span(stats, '.1f', 1e9)} GFLOP/s"
        for gemm, stats in machine.items()
    )
    peak_text = "none known for this device" if peak is None else f"{peak:.3g} FLOP/s"
    return [
        f"FLOPs per trained token (flops.py): conventional 6N + 2N per reference forward, N = "
        f"{flops['n'] / 1e6:.2f}M; required (3 + reference) x 2 x (N_blocks + H x R/T) (LoRA: "
        f"2 + reference), blocks' matrices N_blocks = {flops['n_blocks'] / 1e6:.2f}M, LM head "
        f"H = {flops['head'] / 1e6:.2f}M on response positions only, R/T = "
        f"{flops['response_share']:.3f}; reference = 1 where it runs in every step.",
        f"Matrix products (ceiling.py; M x K x N, median (min-max) over every configuration's "
        f"processes, each measured right after its timed steps): {rates}. Each row's fractions use "
        f"its own processes' medians. Dense bf16 datasheet peak: {peak_text}.",
    ]


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


def measure_report(args, work, configs: dict, ratios: dict, raw: dict, flops: dict, gemms: dict):
    """``throughput``'s or ``memory``'s report of ``raw`` (configuration name -> its repeats' results;
    ``configs``: name -> Config) by ``ratios`` (a RATIOS value), ``flops`` and ``gemms``."""
    first = next(iter(raw.values()))[0]
    checks = {name: [check_step0(r, name, first) for r in rs] for name, rs in raw.items()}
    device = torch.cuda.get_device_name() if work.device == "cuda" else "cpu"
    peak = bf16_peak(device)
    summary = {name: summary_row(configs[name], rs, flops, peak) for name, rs in raw.items()}
    rows = {label: ratio_row(summary, raw, *pair) for label, pair in ratios.items()}
    processes = [r for rs in raw.values() for r in rs]
    machine = {gemm: summarise(ceiling_rates(processes, gemm)) for gemm in gemms}  # every process
    write(args, work, args.command, {
        "flops": {**flops, "device": device, "bf16_peak_flops": peak},
        "ceiling": {"shapes_mkn": gemms, "flops_per_second": machine}, "summary": summary,
        "ratios": rows, "step0_checks": checks, "raw": raw,
    }, [
        f"Device: {device}, {work.precision}, torch threads: {args.threads}.",
        *flops_text(flops, gemms, machine, peak), table(SUMMARY_COLUMNS, summary),
        table(RATIO_COLUMNS, {f"{label}: {a} / {b}": rows[label] for label, (a, b) in ratios.items()}),
    ])  # fmt: skip


def sweep_report(args, work, raw: dict, losses, betas) -> None:
    """``sweep``'s report of ``raw`` (configuration name -> [its result]) over ``losses`` x
    ``betas``, each configuration's time over the first's."""
    results = {name: rs[0] for name, rs in raw.items()}
    first = next(iter(results.values()))["sweep_seconds"]
    for result in results.values():
        result["speedup"] = result["sweep_seconds"] / first
    runs = len(losses) * len(betas)
    text = f"{runs} runs (losses {list(losses)} x betas {list(betas)}), {work.steps} steps of "
    write(args, work, "sweep", {"runs": runs, "raw": results}, [
        f"{text}{work.batch_size} pairs each.", table(SWEEP_COLUMNS, results)
    ])  # fmt: skip
