"""The machine's matrix-product rate, the ceiling a configuration's FLOP/s are read against.

Measured in each configuration's own process right after its timed steps, with its torch threads,
on its device, in the workload's dtype (fp32; bf16 where the job runs under bf16 autocast), so a
machine busy during the steps is busy during these too. Two products, (M, K) @ (K, N):

- ``largest_gemm``: the model's largest, M = a timed step's tokens (the rows every block's matrix
  product multiplies), K = hidden, N = the widest output of the model's matrices (the vocabulary,
  i.e. the LM head, on every preset here; the MLP's width where that is wider);
- ``square_2048``: 2048 x 2048 x 2048, a shape any BLAS runs near its best.

Each: one warm-up call, one call timed to size a sample (enough calls to last MIN_SAMPLE_SECONDS),
then REPEATS samples; the rate is 2 M N K FLOPs over the median sample's seconds per product.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

REPEATS = 5  # timed samples per product; their median counts
MIN_SAMPLE_SECONDS = 0.05  # a sample repeats the product until it lasts about this long
SQUARE = 2048  # the square product's side
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # Workload.precision -> matmul dtype


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_rate(
    m: int, k: int, n: int, dtype: torch.dtype, device: str, repeats: int = REPEATS,
    min_seconds: float = MIN_SAMPLE_SECONDS, clock=time.perf_counter,
) -> dict:  # fmt: skip
    """FLOP/s of torch.matmul on (m, k) @ (k, n): 2 m n k FLOPs over the median seconds per product
    of ``repeats`` samples; ``clock`` (seconds) is the timer."""
    a = torch.randn(m, k, dtype=dtype, device=device)  # (M, K)
    b = torch.randn(k, n, dtype=dtype, device=device)  # (K, N)
    out = torch.empty(m, n, dtype=dtype, device=device)  # (M, N)

    def seconds(calls: int) -> float:
        synchronize(device)
        start = clock()
        for _ in range(calls):
            torch.matmul(a, b, out=out)
        synchronize(device)
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
