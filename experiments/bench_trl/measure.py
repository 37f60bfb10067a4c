"""Timing and memory, by the same rule on both sides.

Each tool notes when each optimiser step ends (its GPU work finished). Timed: the end of step 1 to
the end of the last step S, which holds all a steady step costs (batch, policy and any reference
forward, loss, backward, clipping, AdamW, the tool's logging) and nothing of model loading, data,
reference precomputation or the warm-up step 1:

    tokens_per_second = sum(tokens of steps 2..S) / (end of step S - end of step 1)

The same interval in process CPU time (all threads) gives tokens per CPU-second, which depends much
less on other load on the machine. Setup: the run's start to the start of step 1. GPU memory: the
peak allocated up to the end of step 1, then the peak over steps 2..S.
"""

from __future__ import annotations

import statistics
import time

import torch

from prefopt.trainer.provenance import peak_memory


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
        if torch.cuda.is_available():
            torch.cuda.synchronize()
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
    seconds, timed_tokens = step_ends[-1] - step_ends[0], sum(tokens[1:])
    return {
        "timed_steps": len(step_ends) - 1,
        "timed_seconds": seconds,
        "timed_tokens": timed_tokens,
        "tokens_per_second": timed_tokens / seconds,
        "seconds_per_step": seconds / (len(step_ends) - 1),
    }


def summarise(values: list[float]) -> dict:
    """Median, min, max and relative spread (max - min) / median of repeated measurements."""
    if not values:
        raise ValueError("summarise needs at least one value")
    median, low, high = statistics.median(values), min(values), max(values)
    spread = (high - low) / median if median else float("nan")
    return {"median": median, "min": low, "max": high, "spread": spread, "values": list(values)}
