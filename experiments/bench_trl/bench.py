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
sweep, TRL with its default and with precompute_ref_log_probs.
Writes sweep.json and sweep.md.

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
import os
import platform
import subprocess
import sys
import tempfile
import time
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

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {  # name -> (tool, mode, comparison)
    "prefopt_frozen_copy": ("prefopt", "frozen_copy", "a"),
    "trl_default": ("trl", "default", "a"),
    "prefopt_cached": ("prefopt", "cached", "b"),
    "trl_precompute": ("trl", "precompute", "b"),
}
SWEEP_LOSSES = {  # prefopt loss name -> TRL DPOTrainer loss_type (the same loss)
    "dpo": "sigmoid",
    "ipo": "ipo",
    "hinge": "hinge",
    "sppo_hard": "sppo_hard",
    "apo_zero": "apo_zero",
}
SWEEP_BETAS = (0.05, 0.1, 0.5)
PRESETS = {"cpu": {}, "gpu": GPU_WORKLOAD, "tiny_gpu": TINY_GPU_WORKLOAD}  # --preset -> Workload
REFERENCE_EVERY_STEP = {"prefopt_frozen_copy", "trl_default"}  # run a reference forward each step
MEMORY_CONFIGS = {  # name -> (tool, mode): LoRA with the adapter-off reference, and with none
    "prefopt_lora_disabled": ("prefopt", "lora_disabled"),
    "prefopt_lora_cached": ("prefopt", "lora_cached"),
}
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


def prefopt_loss(name: str, beta: float) -> dict:
    """The loss's own config file with beta replaced."""
    from omegaconf import OmegaConf

    loss = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "loss" / f"{name}.yaml"))
    loss["beta"] = beta
    return loss


def run_one(tool: str, mode: str, workdir: Path, run_dir: Path, work: Workload, loss=None) -> dict:
    """One training run of ``tool`` in ``mode``; loss = (prefopt name, beta) or None for DPO."""
    if tool == "prefopt":
        from prefopt_side import train_prefopt

        spec = prefopt_loss(*loss) if loss else None
        lora = mode.startswith("lora_")  # lora_disabled, lora_cached: a LoRA adapter is trained
        reference = "lora_disabled" if mode == "lora_disabled" else mode.removeprefix("lora_")
        reference = reference.removesuffix("_compile")  # cached_compile: also trainer.compile
        cfg = prefopt_config(
            work, workdir / "model", workdir / "data", run_dir / "cache", reference, spec, lora
        )
        cfg.trainer.compile = mode.endswith("_compile")
        if loss:  # a sweep shares one reference cache
            cfg.cache_dir = str(workdir / "sweep_cache")
        return train_prefopt(cfg, run_dir / "run")
    from trl_side import train_trl

    loss_type, beta = (SWEEP_LOSSES[loss[0]], loss[1]) if loss else ("sigmoid", None)
    return train_trl(
        work,
        workdir / "model",
        workdir / "data" / "train.jsonl",
        run_dir / "trl",
        precompute=mode == "precompute",
        loss_type=loss_type,
        beta=beta,
        evaluate_at_end=loss is not None,  # a sweep's runs evaluate once at the end, as prefopt's
    )


def workload(args) -> Workload:
    """The --preset's workload with --steps and --batch-size (when given) on top."""
    fields = {**PRESETS[args.preset], "steps": args.steps}
    if args.batch_size is not None:
        fields["batch_size"] = args.batch_size
    return Workload(**fields)


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
    work = Workload(**json.loads(args.workload))
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    run_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{args.tool}_{args.mode}_"))
    os.environ["HF_DATASETS_CACHE"] = str(run_dir / "hf_datasets")  # nothing from earlier runs
    if args.sweep:
        grid = [(name, beta) for name in SWEEP_LOSSES for beta in SWEEP_BETAS]
        start = time.perf_counter()
        runs = [
            run_one(args.tool, args.mode, workdir, run_dir / f"{n}_{b}", work, (n, b))
            for n, b in grid
        ]
        result = {"sweep_seconds": time.perf_counter() - start, "grid": grid, "runs": runs}
    else:
        result = run_one(args.tool, args.mode, workdir, run_dir, work)
    result["peak_rss_mib"] = peak_rss_mib()
    Path(args.out).write_text(json.dumps(result))


def spawn(
    tool: str, mode: str, workdir: Path, work: Workload, threads: int, sweep: bool = False
) -> dict:
    """Run a worker in a fresh process (its own peak RSS); returns its result."""
    out = Path(tempfile.mkstemp(dir=workdir, suffix=".json")[1])
    command = [
        sys.executable,
        __file__,
        "worker",
        "--tool",
        tool,
        "--mode",
        mode,
        "--workdir",
        str(workdir),
        "--workload",
        json.dumps(work.to_dict()),
        "--out",
        str(out),
        "--threads",
        str(threads),
    ] + (["--sweep"] if sweep else [])
    started = time.perf_counter()
    log = workdir / f"{out.stem}.log"
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{tool} {mode} failed (exit {done.returncode}); log: {log}")
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def spawn_each(configs: dict, work: Workload, threads: int, sweep: bool = False) -> dict:
    """Each configuration (name -> (tool, mode)) in a process of its own, one after the other,
    on one prepared model and data set; name -> result."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare(workdir, work)
        for name, (tool, mode) in configs.items():
            results[name] = spawn(tool, mode, workdir, work, threads, sweep=sweep)
            result = results[name]
            if sweep:
                print(f"{name}: {result['sweep_seconds']:.1f} s for the sweep")
            else:
                print(f"{name}: steps' peak GPU memory {result['steps_gpu_peak_mib']} MiB")
    return results


def report_header(args, work: Workload) -> dict:
    """The command, the machine and the workload: the first keys of every report."""
    return {
        "command": " ".join(["python", "experiments/bench_trl/bench.py", *sys.argv[1:]]),
        "machine": machine(args.threads, work),
        "workload": work.to_dict(),
    }


def machine(threads: int, work: Workload) -> dict:
    """What the numbers were measured on."""
    import transformers

    info = {
        "cpu_cores": os.cpu_count(),
        "torch_threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "precision": work.precision,
        "device": peak_flops(work.device)[0],
    }
    try:
        import trl

        info["trl"] = trl.__version__
    except ImportError:
        info["trl"] = None
    return info


def check_step0(result: dict, name: str, reference: dict) -> dict:
    """Step-0 loss must be log 2 and the mean chosen log-prob equal to prefopt's, to 1e-4."""
    import math

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


def throughput(args) -> None:
    work = workload(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokens = tokens_per_step(work, make_pairs(work))
    configs = dict(CONFIGS)
    if args.compile:  # prefopt at its best, plus torch.compile of the policy's body
        configs["prefopt_cached_compile"] = ("prefopt", "cached_compile", "b")
    raw: dict[str, list] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare(workdir, work)
        for repeat in range(args.repeats):
            for name, (tool, mode, _) in configs.items():  # interleaved: a, a, b, b per repeat
                result = spawn(tool, mode, workdir, work, args.threads)
                if tool == "prefopt" and result["tokens"] != tokens:
                    raise RuntimeError(f"prefopt trained on {result['tokens']}, expected {tokens}")
                result.update(steady_throughput(result["step_ends"], tokens))
                cpu = steady_throughput(result["step_ends_cpu"], tokens)
                result["tokens_per_cpu_second"] = cpu["tokens_per_second"]
                raw[name].append(result)
                print(
                    f"repeat {repeat} {name}: {result['tokens_per_second']:.0f} tokens/s, "
                    f"peak RSS {result['peak_rss_mib']:.0f} MiB, step-0 loss {result['step0_loss']}"
                )
    reference = raw["prefopt_frozen_copy"][0]
    checks = {
        name: [check_step0(r, name, reference) for r in results] for name, results in raw.items()
    }
    flops = flops_per_token(work)
    device, peak = peak_flops(work.device)
    summary = {}
    for name, results in raw.items():
        per_token = flops["policy"] + (flops["reference"] if name in REFERENCE_EVERY_STEP else 0)
        tps = summarise([r["tokens_per_second"] for r in results])
        summary[name] = {
            "tokens_per_second": tps,
            "tokens_per_cpu_second": summarise([r["tokens_per_cpu_second"] for r in results]),
            "peak_rss_mib": summarise([r["peak_rss_mib"] for r in results]),
            "steps_gpu_peak_mib": results[0]["steps_gpu_peak_mib"],
            "setup_seconds": summarise([r["setup_seconds"] for r in results]),
            "model_flops_per_token": per_token,
            "mfu": None if peak is None else tps["median"] * per_token / peak,
        }
    ratios = {}
    for label, ours, theirs in (
        ("a_reference_every_step", "prefopt_frozen_copy", "trl_default"),
        ("b_each_at_its_best", "prefopt_cached", "trl_precompute"),
    ):
        per_repeat = [
            p["tokens_per_second"] / t["tokens_per_second"]
            for p, t in zip(raw[ours], raw[theirs], strict=True)
        ]
        cpu_ratio = (
            summary[ours]["tokens_per_cpu_second"]["median"]
            / summary[theirs]["tokens_per_cpu_second"]["median"]
        )
        ratios[label] = {
            "cpu_time_ratio": cpu_ratio,
            "median_ratio": summary[ours]["tokens_per_second"]["median"]
            / summary[theirs]["tokens_per_second"]["median"],
            "per_repeat": summarise(per_repeat),
            "memory_ratio": summary[ours]["peak_rss_mib"]["median"]
            / summary[theirs]["peak_rss_mib"]["median"],
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
    (out / "throughput.json").write_text(json.dumps(report, indent=1))
    (out / "throughput.md").write_text(throughput_table(report))
    print((out / "throughput.md").read_text())


def throughput_table(report: dict) -> str:
    """Markdown table of the throughput report."""
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"Device: {report['flops']['device']}; model FLOPs per token 6N trained + 2N per reference "
        f"forward, N = {report['flops']['n'] / 1e6:.1f}M; MFU against a dense bf16 peak of "
        f"{report['flops']['bf16_peak_flops'] or 0:.3g} FLOP/s (0: unknown, not reported).",
        "",
        "| configuration | tokens/s median (min-max) | spread | tokens/CPU-s median (min-max) "
        "| peak RSS MiB | steps' peak GPU MiB | MFU | setup s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["summary"].items():
        tps, cpu, rss = row["tokens_per_second"], row["tokens_per_cpu_second"], row["peak_rss_mib"]
        gpu = row["steps_gpu_peak_mib"]
        mfu = "-" if row["mfu"] is None else f"{row['mfu']:.1%}"
        lines.append(
            f"| {name} | {tps['median']:.0f} ({tps['min']:.0f}-{tps['max']:.0f}) | "
            f"{tps['spread']:.0%} | {cpu['median']:.0f} ({cpu['min']:.0f}-{cpu['max']:.0f}) | "
            f"{rss['median']:.0f} | {'-' if gpu is None else f'{gpu:.0f}'} | {mfu} | "
            f"{row['setup_seconds']['median']:.1f} |"
        )
    lines += [
        "",
        "| comparison | prefopt/TRL tokens/s (median ratio) | per repeat | "
        "prefopt/TRL tokens per CPU-s | RSS ratio |",
        "|---|---|---|---|---|",
    ]
    for label, row in report["ratios"].items():
        per = row["per_repeat"]
        lines.append(
            f"| {label} | {row['median_ratio']:.2f}x | {per['min']:.2f}-{per['max']:.2f} | "
            f"{row['cpu_time_ratio']:.2f}x | {row['memory_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def sweep(args) -> None:
    work = workload(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {
        "prefopt_cached": ("prefopt", "cached"),
        "trl_default": ("trl", "default"),
        "trl_precompute": ("trl", "precompute"),
    }
    results = spawn_each(configs, work, args.threads, sweep=True)
    ours = results["prefopt_cached"]["sweep_seconds"]
    report = {
        **report_header(args, work),
        "runs": len(results["prefopt_cached"]["grid"]),
        "sweep_seconds": {k: v["sweep_seconds"] for k, v in results.items()},
        "process_seconds": {k: v["process_seconds"] for k, v in results.items()},
        "speedup": {k: v["sweep_seconds"] / ours for k, v in results.items()},
        "raw": results,
    }
    (out / "sweep.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"{report['runs']} runs (losses {list(SWEEP_LOSSES)} x betas {list(SWEEP_BETAS)}), "
        f"{work.steps} steps of {work.batch_size} pairs each.",
        "",
        "| tool | sweep seconds (in process) | process seconds (with imports) | TRL / prefopt |",
        "|---|---|---|---|",
    ]
    for name in results:
        lines.append(
            f"| {name} | {report['sweep_seconds'][name]:.1f} | "
            f"{report['process_seconds'][name]:.1f} | {report['speedup'][name]:.2f}x |"
        )
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    print((out / "sweep.md").read_text())


def memory(args) -> None:
    """Peak GPU memory of LoRA training with the adapter-off reference against LoRA training
    with no reference forward (cached log-probs, pi_ref freed after filling the cache)."""
    work = workload(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = spawn_each(MEMORY_CONFIGS, work, args.threads)
    with_ref = results["prefopt_lora_disabled"]["steps_gpu_peak_mib"]
    without = results["prefopt_lora_cached"]["steps_gpu_peak_mib"]
    report = {
        **report_header(args, work),
        "ratio_lora_reference_to_none": None if not without else with_ref / without,
        "raw": results,
    }
    (out / "memory.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"Command: `{report['command']}`",
        "",
        "| configuration | steps' peak GPU MiB | before the first step MiB | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        lines.append(
            f"| {name} | {result['steps_gpu_peak_mib']} | {result['setup_gpu_peak_mib']} | "
            f"{result['peak_rss_mib']:.0f} |"
        )
    ratio = report["ratio_lora_reference_to_none"]
    lines += ["", f"LoRA reference / no reference, steps' peak GPU memory: {ratio}"]
    (out / "memory.md").write_text("\n".join(lines) + "\n")
    print((out / "memory.md").read_text())


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
    sub.add_argument("--tool", choices=["prefopt", "trl"], required=True)
    sub.add_argument(
        "--mode",
        choices=[
            "frozen_copy",
            "cached",
            "cached_compile",
            "default",
            "precompute",
            "lora_disabled",
            "lora_cached",
        ],
    )
    sub.add_argument("--workdir", required=True)
    sub.add_argument("--workload", required=True)
    sub.add_argument("--out", required=True)
    sub.add_argument("--sweep", action="store_true")
    sub.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    handlers = {"throughput": throughput, "sweep": sweep, "memory": memory, "worker": worker}
    handlers[args.command](args)


if __name__ == "__main__":
    main()
