"""Sampling settings, derived seeds, and samples cached on disk (pi_ref's, shared by a sweep).

A cache entry is keyed by the model key (a hash that identifies pi_ref), the prompt token ids, the
number of samples per prompt, every sampling setting, the seed and the sampler's version, so a
change in any of them computes new samples instead of reusing stale ones. An entry that cannot be
read (or holds the wrong number of samples) is corrupt: the samples are drawn again, as the same seed
draws them, and the entry replaced, with a warning naming it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from prefopt.eval.hashing import stable_hash
from prefopt.eval.settings import eval_value
from prefopt.models.sampling import SAMPLER_VERSION, Samples, sample_responses
from prefopt.results.store import atomic_write_text, read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingSettings:
    """How responses are drawn (conf/eval/default.yaml holds each key's default and meaning)."""

    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    batch_size: int

    @classmethod
    def from_config(cls, eval_cfg: Mapping) -> SamplingSettings:
        """From the eval group; a key a mapping written by hand leaves out gets the YAML's value
        (max_new_tokens, which the trainer derives from the data, must be given)."""
        return cls(
            max_new_tokens=int(eval_cfg["max_new_tokens"]),
            temperature=float(eval_value(eval_cfg, "temperature")),
            top_k=int(eval_value(eval_cfg, "top_k")),
            top_p=float(eval_value(eval_cfg, "top_p")),
            batch_size=int(eval_value(eval_cfg, "batch_size")),
        )

    @property
    def samples_the_model(self) -> bool:
        """True when samples come from the model itself (temperature 1, no top-k/top-p), the
        condition for an unbiased KL estimate."""
        return self.temperature == 1.0 and self.top_k == 0 and self.top_p >= 1.0


def derive_seed(*parts) -> int:
    """A seed in [0, 2^31) from a hash of ``parts``: streams with different parts are unrelated."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cached_samples(
    model,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    *,
    settings: SamplingSettings,
    seed: int,
    cache_dir: str | Path,
    model_key: str,
    label: str,
    samples_per_prompt: int = 1,
) -> Samples:
    """``samples_per_prompt`` = k independent samples of every prompt, drawn once per (model_key,
    prompt_ids, k, settings, seed) and loaded afterwards.

    The k * P samples come in k blocks of all P prompts: sample j of prompt i is at j * P + i.
    Logs one line saying whether the samples were computed or loaded.
    """
    if samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be a positive integer, got {samples_per_prompt}")
    key = stable_hash(
        {
            "model": model_key,
            "prompts": stable_hash([list(p) for p in prompt_ids]),
            "samples_per_prompt": int(samples_per_prompt),
            "settings": asdict(settings),
            "seed": seed,
            "sampler": SAMPLER_VERSION,
        }
    )
    path = Path(cache_dir) / "reference_samples" / f"{key}.json"
    if path.exists():
        stored, problem = _read_samples(path, len(prompt_ids) * samples_per_prompt)
        if problem is None:
            log.info("%s: %d samples loaded from cache %s", label, len(stored.texts), path)
            return stored
        log.warning("%s: sample cache %s is corrupt (%s); sampling again", label, path, problem)
    blocks = [ids for _ in range(samples_per_prompt) for ids in prompt_ids]  # (k * P,)
    samples = sample_responses(model, tokenizer, blocks, seed=seed, **asdict(settings))
    atomic_write_text(path, json.dumps(asdict(samples)))
    log.info("%s: %d samples computed and cached at %s", label, len(samples.texts), path)
    return samples


def _read_samples(path: Path, count: int) -> tuple[Samples | None, str | None]:
    """(samples, None) for a readable entry of `count` samples, else (None, what is wrong)."""
    try:
        stored = read_json(path)
        samples = Samples(**stored)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    fields = (samples.response_ids, samples.texts, samples.finished)
    if not all(isinstance(field, list) and len(field) == count for field in fields):
        return None, f"not {count} samples"
    return samples, None
