"""The samples file of an evaluation: one JSONL row per held-out prompt, both sides and the verdict."""

from __future__ import annotations

import json

from prefopt.results.store import atomic_write_text, to_jsonable


def write_samples(path, prompts, samples, ref, rewards, comparisons, lengths, logratios) -> None:
    """One JSONL row per prompt, written atomically, for k policy and m pi_ref samples per prompt.

    ``samples`` holds the policy's k * N samples in k blocks of the N prompts; ``rewards`` (k, N)
    or None, ``comparisons`` (k, m, N), ``lengths`` (k, N), ``logratios`` (k, N).

    A prompt's scores are its means over its samples: ``preference`` (over the k * m comparisons),
    ``policy_reward``, ``policy_length`` and ``logratio`` (over the k policy samples), so a reader
    of one number per prompt uses every sample. The ``*_all`` lists hold each sample: ``policy_all``
    and its rewards, lengths, ``policy_finished_all``, ``policy_token_ids_all`` (EOS included when
    emitted: the log-ratio can be recomputed exactly, as decoded text may not re-tokenize) and
    ``logratio_all`` (k each), ``reference_all`` and its rewards and lengths (m each), and
    ``preference_all`` (k lists of m: p_iab compares policy sample a with pi_ref's sample b).
    ``policy``, ``policy_finished`` and ``policy_token_ids`` are the first policy sample's;
    ``reference``, ``reference_reward``, ``reference_length`` and ``reference_finished`` pi_ref's
    first sample's."""
    k, n = lengths.shape
    policy_texts = [samples.texts[a * n : (a + 1) * n] for a in range(k)]  # (k, N)
    ref_texts = ref.texts  # (m, N)
    rows = []
    for i, prompt in enumerate(prompts):
        column = [a * n + i for a in range(k)]  # the prompt's k entries in ``samples``
        policy_rewards = None if rewards is None else [float(r) for r in rewards[:, i]]
        ref_rewards = None if ref.rewards is None else [float(r) for r in ref.rewards[:, i]]
        row = {
            "prompt_index": i,
            "prompt": prompt,
            "policy": policy_texts[0][i],
            "reference": ref_texts[0][i],
            "policy_reward": None if rewards is None else float(rewards[:, i].mean()),
            "reference_reward": None if ref_rewards is None else ref_rewards[0],
            "policy_length": float(lengths[:, i].mean()),
            "reference_length": int(ref.lengths[0, i]),
            "policy_finished": bool(samples.finished[i]),
            "policy_token_ids": samples.response_ids[i],
            "reference_finished": bool(ref.samples.finished[i]),
            "preference": float(comparisons[:, :, i].mean()),
            "logratio": float(logratios[:, i].mean()),
            "policy_all": [texts[i] for texts in policy_texts],
            "policy_reward_all": policy_rewards,
            "policy_length_all": [int(c) for c in lengths[:, i]],
            "policy_finished_all": [bool(samples.finished[j]) for j in column],
            "policy_token_ids_all": [samples.response_ids[j] for j in column],
            "logratio_all": [float(x) for x in logratios[:, i]],
            "reference_all": [texts[i] for texts in ref_texts],
            "reference_reward_all": ref_rewards,
            "reference_length_all": [int(c) for c in ref.lengths[:, i]],
            "preference_all": [[float(p) for p in per_ref] for per_ref in comparisons[:, :, i]],
        }
        rows.append(json.dumps(to_jsonable(row)) + "\n")
    atomic_write_text(path, "".join(rows))
