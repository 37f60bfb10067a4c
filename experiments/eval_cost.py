"""Evaluation cost of a default run, and the sampler against ``model.generate``.

    python experiments/eval_cost.py --runs 3

1. Runs ``python -m prefopt.train`` with the default config ``--runs`` times (after one warm-up run
   that builds the task and pi_ref's cached samples, not counted) and reads each run's
   ``train_seconds`` and ``eval_seconds`` from ``summary.json`` and its wall-clock time from the
   process: the evaluation's share of a default run is eval_seconds / wall.
2. Times prefopt's sampler against ``model.generate`` on the task's pi_ref and validation prompts
   with the default evaluation settings, in this process, and the fraction of identical responses.

Writes ``results/eval_cost/cost.json`` and ``cost.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from prefopt.results.store import atomic_write_json, atomic_write_text, read_json

OUT = Path("results/eval_cost")


def default_run(run_dir: Path) -> dict:
    """One default run into ``run_dir``; its wall time and the timings of its summary."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "prefopt.train", f"hydra.run.dir={run_dir}"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    summary = read_json(run_dir / "summary.json")
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    evaluations = [row for row in rows if "win_rate" in row]
    return {
        "wall_seconds": wall,
        "train_seconds": summary["train_seconds"],
        "eval_seconds": summary["eval_seconds"],
        "evaluations": len(evaluations),
        "generation_eval_seconds": sum(row["eval_seconds"] for row in evaluations),
        "eval_share": summary["eval_seconds"] / wall,
    }


def sampler_against_generate(repeats: int) -> dict:
    """Seconds to sample the validation prompts once with prefopt's sampler and with generate."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefopt.models.sampling import sample_responses, sample_with_generate
    from prefopt.tasks import build_task

    cache = os.environ.get("PREFOPT_CACHE", ".cache/prefopt")
    artifacts = build_task({"name": "reviews"}).prepare(cache)
    tokenizer = AutoTokenizer.from_pretrained(artifacts.model_dir)
    model = AutoModelForCausalLM.from_pretrained(artifacts.model_dir).eval()
    with open(artifacts.prompt_files["validation"], encoding="utf-8") as handle:
        prompts = [json.loads(line)["prompt"] for line in handle]
    prompt_ids = tokenizer(prompts)["input_ids"]
    with open("conf/eval/default.yaml", encoding="utf-8") as handle:
        settings = yaml.safe_load(handle)
    batch, max_new = int(settings["batch_size"]), int(settings["max_new_tokens"])

    def ours(seed):
        return sample_responses(
            model, tokenizer, prompt_ids, max_new_tokens=max_new, seed=seed, batch_size=batch
        ).response_ids

    def theirs(seed):
        return sample_with_generate(
            model, tokenizer, prompt_ids, max_new_tokens=max_new, seed=seed, batch_size=batch
        )

    times = {"prefopt": [], "generate": []}
    same = []  # fraction of responses with identical tokens, per seed
    for seed in range(repeats):
        for name, sample in (("prefopt", ours), ("generate", theirs)):
            start = time.perf_counter()
            samples = sample(seed)
            times[name].append(time.perf_counter() - start)
            if name == "prefopt":
                reference = samples
            else:
                same.append(
                    sum(a == b for a, b in zip(samples, reference, strict=True)) / len(samples)
                )
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "prompts": len(prompt_ids),
        "batch_size": batch,
        "max_new_tokens": max_new,
        "prefopt_seconds": median["prefopt"],
        "generate_seconds": median["generate"],
        "speedup": median["generate"] / median["prefopt"],
        "same_tokens_fraction": min(same),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed default runs (after a warm-up)")
    parser.add_argument("--repeats", type=int, default=5, help="sampler timings per side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        default_run(Path(tmp) / "warmup")
        runs = [default_run(Path(tmp) / f"run{i}") for i in range(args.runs)]
    sampler = sampler_against_generate(args.repeats)
    result = {
        "command": f"python experiments/eval_cost.py --runs {args.runs} --repeats {args.repeats}",
        "runs": runs,
        "eval_share_median": statistics.median(r["eval_share"] for r in runs),
        "sampler": sampler,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "cost.json", result)
    lines = [
        "| run | wall s | train s | eval s | evaluations | eval / wall |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs):
        lines.append(
            f"| {i} | {r['wall_seconds']:.1f} | {r['train_seconds']:.1f} | {r['eval_seconds']:.1f}"
            f" | {r['evaluations']} | {r['eval_share']:.1%} |"
        )
    lines += [
        "",
        f"Median evaluation share of a default run: {result['eval_share_median']:.1%}.",
        "",
        f"Sampler on {sampler['prompts']} validation prompts (batch {sampler['batch_size']}, "
        f"max_new_tokens {sampler['max_new_tokens']}, median of {args.repeats}): prefopt "
        f"{sampler['prefopt_seconds']:.3f} s, model.generate {sampler['generate_seconds']:.3f} s, "
        f"{sampler['speedup']:.2f}x; identical responses (lowest over seeds): "
        f"{sampler['same_tokens_fraction']:.1%}.",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(OUT / "cost.md", text)
    print(text)


if __name__ == "__main__":
    main()
