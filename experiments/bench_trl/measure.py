"""Timing and memory by one rule on both sides (results/performance/README.md, "What is timed"):
the tokens of steps 2..S over the end of step 1 to the end of step S, by the wall clock and by
process CPU time; setup up to step 1's start; the GPU peak up to step 1's end, then over 2..S."""

from __future__ import annotations

import statistics
import time

import torch

from prefopt.trainer.provenance import peak_memory


def synchronize() -> None:
    """Wait for the GPU's queued work (nothing to wait for without one)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_mib(key: str) -> float | None:
    """prefopt's peak_memory ``key`` (peak_rss_bytes; peak_gpu_bytes, None without a GPU) in MiB."""
    value = peak_memory().get(key)
    return None if value is None else value / 2**20


class StepClock:
    """Started with a run: each step's end (wall and CPU clock), step 1's start, the GPU peaks."""

    def __init__(self):
        self.start, self.record = time.perf_counter(), {"step_ends": [], "step_ends_cpu": []}

    def step_end(self, step_start: float) -> None:
        """At the end of a step that started at ``step_start`` (``time.perf_counter``)."""
        synchronize()
        self.record["step_ends"].append(time.perf_counter())
        self.record["step_ends_cpu"].append(time.process_time())
        if "setup_seconds" not in self.record:  # step 1
            self.record["setup_seconds"] = step_start - self.start
            self.record["setup_gpu_peak_mib"] = peak_mib("peak_gpu_bytes")
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()  # the timed steps' peak from here on
        self.record["steps_gpu_peak_mib"] = peak_mib("peak_gpu_bytes")  # steps 2..S

    def result(self, tokens: list[int]) -> dict:
        """The records and the throughput of ``tokens`` per step by both clocks."""
        cpu = steady_throughput(self.record["step_ends_cpu"], tokens)["tokens_per_second"]
        wall = steady_throughput(self.record["step_ends"], tokens)
        return {**self.record, **wall, "tokens_per_cpu_second": cpu}


def steady_throughput(step_ends: list[float], tokens: list[int]) -> dict:
    """Tokens per second over steps 2..S from step end times (s) and tokens per step."""
    if len(step_ends) != len(tokens) or len(step_ends) < 2 or step_ends[-1] <= step_ends[0]:
        raise ValueError(
            f"need the increasing end times of 2 or more steps and their token counts; got "
            f"{step_ends} and {tokens}"
        )
    seconds, timed_tokens, steps = step_ends[-1] - step_ends[0], sum(tokens[1:]), len(tokens) - 1
    return {
        "timed_steps": steps,
        "timed_seconds": seconds,
        "timed_tokens": timed_tokens,
        "tokens_per_second": timed_tokens / seconds,
        "seconds_per_step": seconds / steps,
    }


def summarise(values: list[float]) -> dict:
    """Median, min, max and relative spread (max - min) / median of repeated measurements."""
    if not values:
        raise ValueError("summarise needs at least one value")
    median, low, high = statistics.median(values), min(values), max(values)
    spread = (high - low) / median if median else float("nan")
    return {"median": median, "min": low, "max": high, "spread": spread, "values": list(values)}
