"""The matrix-product rates a configuration's FLOP/s are read against, measured in its own process
after its timed steps (its threads, device and dtype), for two (M, K) @ (K, N): ``largest_gemm``,
the model's largest (M = a timed step's tokens, K = hidden, N = the widest matrix output), and
``square_2048``. Each: a warm-up call, a call that sizes a sample to MIN_SAMPLE_SECONDS, REPEATS
samples; the rate is 2 M N K FLOPs over the median sample's seconds per product.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from measure import synchronize

REPEATS = 5  # timed samples per product; their median counts
MIN_SAMPLE_SECONDS = 0.05  # a sample repeats the product until it lasts about this long
SQUARE = 2048  # the square product's side
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # Workload.precision -> matmul dtype


def matmul_rate(
    m: int, k: int, n: int, dtype: torch.dtype, device: str, repeats: int = REPEATS,
    min_seconds: float = MIN_SAMPLE_SECONDS, clock=time.perf_counter,
) -> dict:  # fmt: skip
    """FLOP/s of torch.matmul on (m, k) @ (k, n) timed by ``clock`` (seconds), as above."""
    like = {"dtype": dtype, "device": device}
    a, b, out = torch.randn(m, k, **like), torch.randn(k, n, **like), torch.empty(m, n, **like)

    def seconds(calls: int) -> float:
        """Seconds of ``calls`` products, the GPU's queue drained before and after."""
        synchronize()
        start = clock()
        for _ in range(calls):
            torch.matmul(a, b, out=out)
        synchronize()
        return clock() - start

    seconds(1)  # warm-up
    calls = max(1, math.ceil(min_seconds / max(seconds(1), 1e-9)))
    per_product = statistics.median(seconds(calls) / calls for _ in range(repeats))
    rate = 2 * m * n * k / per_product
    return {"shape": [m, k, n], "calls": calls, "seconds": per_product, "flops_per_second": rate}


def gemm_shapes(flops: dict, tokens_per_step: list[int]) -> dict[str, tuple[int, int, int]]:
    """The two products' (M, K, N) from ``flops.flops_per_token``'s counts and the tokens per step
    (M: the timed steps' mean, rounded)."""
    timed = tokens_per_step[1:]
    largest = (round(sum(timed) / len(timed)), flops["hidden"], flops["widest"])
    return {"largest_gemm": largest, "square_2048": (SQUARE, SQUARE, SQUARE)}


def measure_ceiling(shapes: dict, precision: str, device: str) -> dict:
    """``matmul_rate`` of each of ``shapes`` (name -> (M, K, N))."""
    return {name: matmul_rate(*shape, DTYPES[precision], device) for name, shape in shapes.items()}
