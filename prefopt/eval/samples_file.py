"""The samples file of an evaluation: one JSONL row per held-out prompt, both sides and the verdict."""

from __future__ import annotations

import json

from prefopt.results.store import atomic_write_text, to_jsonable


def write_samples(path, prompts, samples, ref, rewards, comparisons, lengths, logratios) -> None:
    """One JSONL row per prompt, written atomically; ``policy_token_ids`` (EOS included when
    emitted) lets the log-ratio be recomputed exactly, as decoded text may not re-tokenize.

    ``reference``, ``reference_reward``, ``reference_length`` and ``reference_finished`` describe
    pi_ref's first sample; the ``*_all`` lists hold all K, and ``preference_all`` the K
    comparisons p_ij whose mean is ``preference``."""
    rows = []
    ref_texts = ref.texts  # (K, N)
    for i, prompt in enumerate(prompts):
        ref_rewards = None if ref.rewards is None else [float(r) for r in ref.rewards[:, i]]
        row = {
            "prompt_index": i,
            "prompt": prompt,
            "policy": samples.texts[i],
            "reference": ref_texts[0][i],
            "policy_reward": None if rewards is None else float(rewards[i]),
            "reference_reward": None if ref_rewards is None else ref_rewards[0],
            "policy_length": int(lengths[i]),
            "reference_length": int(ref.lengths[0, i]),
            "policy_finished": bool(samples.finished[i]),
            "policy_token_ids": samples.response_ids[i],
            "reference_finished": bool(ref.samples.finished[i]),
            "preference": float(comparisons[:, i].mean()),
            "logratio": float(logratios[i]),
            "reference_all": [texts[i] for texts in ref_texts],
            "reference_reward_all": ref_rewards,
            "reference_length_all": [int(n) for n in ref.lengths[:, i]],
            "preference_all": [float(p) for p in comparisons[:, i]],
        }
        rows.append(json.dumps(to_jsonable(row)) + "\n")
    atomic_write_text(path, "".join(rows))
