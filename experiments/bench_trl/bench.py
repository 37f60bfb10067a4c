"""Claim: on the same job, prefopt trains faster than TRL's DPOTrainer, and a sweep much faster.

    pip install -e ".[bench]"   # trl, in an environment of its own
    python experiments/bench_trl/bench.py throughput --repeats 3 --out results/performance
    python experiments/bench_trl/bench.py sweep --out results/performance

``throughput``: builds the workload (workload.py) once, then runs, in separate processes and
interleaved (prefopt, TRL, prefopt, TRL, ...) so that other load on the machine hits both alike, four
configurations ``--repeats`` times each:
(a) both compute the reference every step: prefopt ``trainer.reference=frozen_copy``, TRL's default;
(b) each at its best: prefopt ``trainer.reference=cached``, TRL ``precompute_ref_log_probs=True``.
Each process reports the step end times (measure.py says what is timed), tokens per step, its peak RSS
and the step-0 loss and mean chosen log-prob; the step-0 values must agree to 1e-4 (dropout off and
policy = reference at step 0, so the DPO loss is log 2 on both sides). Writes throughput.json and
throughput.md.

``sweep``: the same N = 5 losses x 3 betas, end to end (model loading, data, reference, training,
one evaluation of the held-out pairs after the last step, the tool's end-of-run work), each tool in
one process running its N runs one after the other: prefopt with one reference cache shared by the
sweep, TRL with its default and with precompute_ref_log_probs. Writes sweep.json and sweep.md.

``memory``: peak GPU memory over the training steps of LoRA training with pi_ref as the adapter-off
model against LoRA training with cached reference log-probs (no reference forward, pi_ref freed once
the cache is filled). Writes memory.json and memory.md.

``--preset gpu``: the job on a GPU: a 374M-parameter Llama shape built from a config, 16 pairs of 384
tokens per step, bf16 autocast over fp32 weights on both sides; the throughput table then also gives
each configuration's peak GPU memory and model FLOPs utilisation (6N per trained token, 2N per token of
a reference forward, against the card's dense bf16 peak). ``--preset tiny_gpu`` runs the same code
path on a CPU in seconds (the tests use it). experiments/bench_trl/gpu.sh runs all of it on one GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import peak_rss_mib, steady_throughput, summarise  # noqa: E402
from workload import (  # noqa: E402
    GPU_WORKLOAD,
    TINY_GPU_WORKLOAD,
    Workload,
    build_model_dir,
    flops_per_token,
    make_pairs,
    prefopt_config,
    tokens_per_step,
    write_data,
)


@dataclass(frozen=True)
class Config:
    """One configuration a worker process runs."""

    name: str
    tool: str  # prefopt or trl
    reference: str = "cached"  # prefopt: trainer.reference (frozen_copy, cached, lora_disabled)
    precompute: bool = False  # trl: precompute_ref_log_probs (else a reference forward per step)
    lora: bool = False  # prefopt: train a LoRA adapter instead of the whole model
    compile: bool = False  # prefopt: trainer.compile
    reference_every_step: bool = False  # a reference forward per step (2N FLOPs per token)


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
MEMORY = ["prefopt_lora_disabled", "prefopt_lora_cached"]
SWEEP_LOSSES = {  # prefopt loss name -> TRL DPOTrainer loss_type (the same loss)
    "dpo": "sigmoid",
    "ipo": "ipo",
    "hinge": "hinge",
    "sppo_hard": "sppo_hard",
    "apo_zero": "apo_zero",
}
SWEEP_BETAS = (0.05, 0.1, 0.5)
PRESETS = {"cpu": {}, "gpu": GPU_WORKLOAD, "tiny_gpu": TINY_GPU_WORKLOAD}  # --preset -> Workload
# Dense bf16 peak FLOP/s by device name (first match): NVIDIA's data sheets.
BF16_PEAK = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("A100", 312e12),
)
STEP0_TOLERANCE = 1e-4


def prepare(workdir: Path, work: Workload) -> None:
    """Model and data both tools read."""
    build_model_dir(workdir / "model", work)
    write_data(workdir / "data", work)


def run_one(config: Config, workdir: Path, run_dir: Path, work: Workload, loss=None) -> dict:
    """One training run of ``config``; loss = (prefopt name, beta) of a sweep's run, or None."""
    if config.tool == "prefopt":
        from prefopt_side import train_prefopt

        cfg = prefopt_config(
            work,
            workdir / "model",
            workdir / "data",
            workdir / "sweep_cache" if loss else run_dir / "cache",  # a sweep shares one cache
            config.reference,
            [f"loss={loss[0]}", f"loss.beta={loss[1]}"] if loss else None,
            config.lora,
            config.compile,
        )
        return train_prefopt(cfg, run_dir / "run")
    from trl_side import train_trl

    return train_trl(
        work,
        workdir / "model",
        workdir / "data" / "train.jsonl",
        run_dir / "trl",
        precompute=config.precompute,
        loss_type=SWEEP_LOSSES[loss[0]] if loss else "sigmoid",
        beta=loss[1] if loss else None,
        evaluate_at_end=loss is not None,  # a sweep's runs evaluate once at the end, as prefopt's
    )


def bf16_peak(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the GPU called ``name``; None where unknown."""
    return next((peak for key, peak in BF16_PEAK if key in name), None)


def peak_flops(device: str) -> tuple[str, float | None]:
    """The GPU's name and dense bf16 peak FLOP/s (None where unknown or on a CPU)."""
    if device != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name()
    return name, bf16_peak(name)


def worker(args) -> None:
    """One configuration in this process: a throughput run, or a whole sweep."""
    work, config = Workload(**json.loads(args.workload)), CONFIGS[args.config]
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    run_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{config.name}_"))
    os.environ["HF_DATASETS_CACHE"] = str(run_dir / "hf_datasets")  # nothing from earlier runs
    if args.sweep:
        grid = [(name, beta) for name in SWEEP_LOSSES for beta in SWEEP_BETAS]
        start = time.perf_counter()
        runs = [run_one(config, workdir, run_dir / f"{n}_{b}", work, (n, b)) for n, b in grid]
        result = {"sweep_seconds": time.perf_counter() - start, "grid": grid, "runs": runs}
    else:
        result = run_one(config, workdir, run_dir, work)
    result["peak_rss_mib"] = peak_rss_mib()
    Path(args.out).write_text(json.dumps(result))


def spawn(name: str, workdir: Path, work: Workload, threads: int, sweep: bool = False) -> dict:
    """Run configuration ``name`` in a fresh process (its own peak RSS); returns its result."""
    out = Path(tempfile.mkstemp(dir=workdir, suffix=".json")[1])
    command = [sys.executable, __file__, "worker", "--config", name, "--workdir", str(workdir)]
    command += ["--workload", json.dumps(work.to_dict()), "--out", str(out)]
    command += ["--threads", str(threads)] + (["--sweep"] if sweep else [])
    started = time.perf_counter()
    log = workdir / f"{out.stem}.log"
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{name} failed (exit {done.returncode}); log: {log}")
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def run_all(names: list[str], work: Workload, threads: int, repeats: int = 1, sweep=False) -> dict:
    """Each configuration in a process of its own, ``repeats`` rounds of all of them interleaved,
    on one prepared model and data set; name -> list of results."""
    results: dict[str, list] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        for repeat in range(repeats):
            for name in names:
                results[name].append(spawn(name, Path(tmp), work, threads, sweep))
                print(f"repeat {repeat} {name}: {results[name][-1]['process_seconds']:.1f} s")
    return results


def report_header(args, work: Workload) -> dict:
    """The command, the machine and the workload: the first keys of every report."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        trl_version = version("trl")
    except PackageNotFoundError:
        trl_version = None
    machine = {
        "cpu_cores": os.cpu_count(),
        "torch_threads": args.threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "precision": work.precision,
        "device": peak_flops(work.device)[0],
        "trl": trl_version,
    }
    command = " ".join(["python", "experiments/bench_trl/bench.py", *sys.argv[1:]])
    return {"command": command, "machine": machine, "workload": work.to_dict()}


def check_step0(result: dict, name: str, reference: dict) -> dict:
    """Step-0 loss must be log 2 and the mean chosen log-prob equal to prefopt's, to 1e-4."""
    loss_error = abs(result["step0_loss"] - math.log(2))
    logps_error = abs(result["step0_chosen_logps"] - reference["step0_chosen_logps"])
    if loss_error > STEP0_TOLERANCE or logps_error > STEP0_TOLERANCE * max(
        1.0, abs(reference["step0_chosen_logps"])
    ):
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
    """<name>.json and <name>.md (the command first) in ``out``; the table is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    text = "\n".join([f"Command: `{report['command']}`", "", *lines]) + "\n"
    (out / f"{name}.md").write_text(text)
    print(text)


def throughput(args, work: Workload) -> None:
    tokens = tokens_per_step(work, make_pairs(work))
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
    flops = flops_per_token(work)
    device, peak = peak_flops(work.device)
    summary = {}
    for name, results in raw.items():
        per_token = flops["policy"] + flops["reference"] * CONFIGS[name].reference_every_step
        summary[name] = {
            key: summarise([r[key] for r in results])
            for key in ("tokens_per_second", "tokens_per_cpu_second", "peak_rss_mib")
        }
        summary[name].update(
            steps_gpu_peak_mib=results[0]["steps_gpu_peak_mib"],
            setup_seconds=summarise([r["setup_seconds"] for r in results]),
            model_flops_per_token=per_token,
            mfu=None
            if peak is None
            else summary[name]["tokens_per_second"]["median"] * per_token / peak,
        )

    def ratio(key: str, ours: str, theirs: str) -> float:
        return summary[ours][key]["median"] / summary[theirs][key]["median"]

    ratios = {}
    for label, (ours, theirs) in COMPARISONS.items():
        pairs = zip(raw[ours], raw[theirs], strict=True)
        ratios[label] = {
            "cpu_time_ratio": ratio("tokens_per_cpu_second", ours, theirs),
            "median_ratio": ratio("tokens_per_second", ours, theirs),
            "per_repeat": summarise(
                [p["tokens_per_second"] / t["tokens_per_second"] for p, t in pairs]
            ),
            "memory_ratio": ratio("peak_rss_mib", ours, theirs),
        }
    report = {
        **report_header(args, work),
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
    ours = results["prefopt_cached"]["sweep_seconds"]
    report = {
        **report_header(args, work),
        "runs": len(results["prefopt_cached"]["grid"]),
        "sweep_seconds": {k: v["sweep_seconds"] for k, v in results.items()},
        "process_seconds": {k: v["process_seconds"] for k, v in results.items()},
        "speedup": {k: v["sweep_seconds"] / ours for k, v in results.items()},
        "raw": results,
    }
    rows = {
        name: {key: report[key][name] for key in ("sweep_seconds", "process_seconds", "speedup")}
        for name in results
    }
    write(Path(args.out), "sweep", report, [
        f"{report['runs']} runs (losses {list(SWEEP_LOSSES)} x betas {list(SWEEP_BETAS)}), "
        f"{work.steps} steps of {work.batch_size} pairs each.",
        "",
        *table(SWEEP_COLUMNS, rows),
    ])  # fmt: skip


def memory(args, work: Workload) -> None:
    """Peak GPU memory of LoRA training with the adapter-off reference against LoRA training
    with no reference forward (cached log-probs, pi_ref freed after filling the cache)."""
    results = {name: rs[0] for name, rs in run_all(MEMORY, work, args.threads).items()}
    with_ref, without = (results[name]["steps_gpu_peak_mib"] for name in MEMORY)
    ratio = None if not without else with_ref / without
    report = {**report_header(args, work), "ratio_lora_reference_to_none": ratio, "raw": results}
    lines = [
        *table(MEMORY_COLUMNS, results),
        "",
        f"LoRA reference / no reference, steps' peak GPU memory: {ratio}",
    ]
    write(Path(args.out), "memory", report, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "sweep", "memory"):
        sub = commands.add_parser(name)
        sub.add_argument("--out", default="results/performance")
        sub.add_argument("--preset", choices=list(PRESETS), default="cpu", help="the job's shape")
        sub.add_argument("--steps", type=int, default=Workload.steps)
        sub.add_argument("--batch-size", type=int, default=None, help="pairs per step")
        sub.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
        if name == "throughput":
            sub.add_argument("--repeats", type=int, default=3)
            sub.add_argument(
                "--compile", action="store_true", help="also prefopt cached with trainer.compile"
            )
    sub = commands.add_parser("worker")
    sub.add_argument("--config", choices=list(CONFIGS), required=True)
    sub.add_argument("--workdir", required=True)
    sub.add_argument("--workload", required=True)
    sub.add_argument("--out", required=True)
    sub.add_argument("--sweep", action="store_true")
    sub.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    if args.command == "worker":
        return worker(args)
    fields = {**PRESETS[args.preset], "steps": args.steps}
    if args.batch_size is not None:
        fields["batch_size"] = args.batch_size
    {"throughput": throughput, "sweep": sweep, "memory": memory}[args.command](
        args, Workload(**fields)
    )


if __name__ == "__main__":
    main()
