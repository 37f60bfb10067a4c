"""Timing and memory shared by both sides, so both are measured by the same rule.

Timed work: the optimiser steps after the first. Each tool records the wall-clock moment each step ends
(after the optimiser step); the timed interval runs from the end of step 1 to the end of the last step, so
it holds everything a step costs in a steady run (fetching and collating the batch, the policy and, where
it runs, the reference forward, the loss, backward, clipping, AdamW, the tool's per-step logging) and
nothing of model loading, data preparation, reference precomputation or the first (warm-up) step.

    tokens_per_second = sum(tokens of steps 2..S) / (end of step S - end of step 1)

The same interval is also measured in CPU time of the process (all its threads): tokens per CPU-second
is the work each tool needs for the same tokens, and depends much less on other load on the machine
than the wall clock does.

Setup is the time from the tool's start to the start of step 1. GPU memory: the peak allocated up to
the end of step 1 (setup and the warm-up step), then the peak over the timed steps 2..S.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import torch


class StepClock:
    """What both sides record, by the same rule: when step 1 started, and at each step's end (its
    GPU work finished) the wall and CPU clocks; the GPU peak through step 1, then over the rest."""

    def __init__(self):
        self.first_step_start: float | None = None
        self.setup_gpu_peak_mib: float | None = None
        self.steps_gpu_peak_mib: float | None = None
        self.step_ends: list[float] = []
        self.step_ends_cpu: list[float] = []

    def step_end(self, step_start: float) -> None:
        """At the end of a step that started at ``step_start`` (``time.perf_counter``)."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.step_ends.append(time.perf_counter())
        self.step_ends_cpu.append(time.process_time())
        if self.first_step_start is None:
            self.first_step_start = step_start
            self.setup_gpu_peak_mib = gpu_peak_mib()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()  # the timed steps' peak from here on
        self.steps_gpu_peak_mib = gpu_peak_mib()

    def result(self, start: float, end: float) -> dict:
        """The records, with setup (start to step 1's start) and run seconds."""
        return {
            "steps_gpu_peak_mib": self.steps_gpu_peak_mib,  # steps 2..S
            "setup_gpu_peak_mib": self.setup_gpu_peak_mib,  # up to the end of step 1
            "step_ends": self.step_ends,
            "step_ends_cpu": self.step_ends_cpu,
            "setup_seconds": self.first_step_start - start,
            "run_seconds": end - start,
        }


def gpu_peak_mib() -> float | None:
    """Peak allocated GPU memory since the last reset, MiB; None without a GPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def steady_throughput(step_ends: list[float], tokens: list[int]) -> dict:
    """Tokens per second over steps 2..S from step end times (s) and tokens per step.

    Returns timed_steps, timed_seconds, timed_tokens, tokens_per_second and seconds_per_step.
    """
    if len(step_ends) != len(tokens):
        raise ValueError(f"{len(step_ends)} step end times but {len(tokens)} token counts")
    if len(step_ends) < 2:
        raise ValueError(f"need at least 2 steps to time steps 2..S; got {len(step_ends)}")
    seconds = step_ends[-1] - step_ends[0]
    if seconds <= 0:
        raise ValueError(f"step end times must increase; got {step_ends[0]} .. {step_ends[-1]}")
    timed_tokens = sum(tokens[1:])
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
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else float("nan"),
        "values": list(values),
    }
