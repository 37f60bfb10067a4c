"""Per-response quantities of sampled responses: their lengths and their log-probs under a model."""

from __future__ import annotations

import numpy as np
import torch

from prefopt.models.logprobs import build_batch, sequence_logps
from prefopt.models.sampling import Samples


def content_lengths(samples: Samples) -> np.ndarray:
    """Response lengths in tokens without the final EOS, (N,) int."""
    return np.array(
        [
            len(ids) - int(done)
            for ids, done in zip(samples.response_ids, samples.finished, strict=True)
        ]
    )


@torch.no_grad()
def response_logps(model, prompt_ids, samples: Samples, pad_id: int, batch_size: int) -> np.ndarray:
    """log model(y_i | x_i) (N,) float64 of each sampled response, EOS included when emitted."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.empty(len(prompt_ids), dtype=torch.float64)  # (N,)
    # Length-sorted chunks keep padding small; results are written back in prompt order.
    order = sorted(range(len(prompt_ids)), key=lambda i: len(samples.response_ids[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = build_batch(
            [prompt_ids[i] for i in chunk], [samples.response_ids[i] for i in chunk], pad_id
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        logps, _ = sequence_logps(model, **batch)  # (b,)
        out[chunk] = logps.double().cpu()
    model.train(was_training)
    return out.numpy()
