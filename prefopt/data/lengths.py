"""The data's length limits against the model's context, checked before any data is read.

A model with learned positions (GPT-2's 1,024, or a tiny model's 128) fails deep in its first forward
pass on a longer sequence (an IndexError; a device assert on a GPU), so the limits that bound a
sequence must fit its context: `data.max_length` (prompt + response), or, without it, the sum of
`data.max_prompt_length` and `data.max_response_length`; `data.max_prompt_length` alone; and, for
sampling, `data.max_prompt_length` plus `eval.max_new_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefopt.errors import ConfigError

from .settings import DataSettings


def check_lengths_fit_context(
    data_cfg: Mapping,
    context_length: int | None,
    model: str,
    max_new_tokens: int | None = None,
) -> None:
    """Raise a ConfigError naming every data key whose limit exceeds `context_length` (the model's
    positions, from `models.loading.model_context_length`; None = no limit), or that leaves a
    sequence unbounded; `model` names the model in the message. `max_new_tokens` (when sampling) is
    checked with the prompt limit."""
    if context_length is None:
        return
    settings = DataSettings.from_cfg(data_cfg)
    prompt, response = settings.max_prompt_length, settings.max_response_length
    problems = []
    if settings.max_length is not None:
        if settings.max_length > context_length:
            problems.append(f"data.max_length={settings.max_length}")
    elif prompt is None or response is None:
        problems.append("data.max_length=null (no limit on prompt + response)")
    elif prompt + response > context_length:
        problems.append(
            f"data.max_prompt_length + data.max_response_length = {prompt} + {response} "
            "with data.max_length=null"
        )
    if prompt is not None and prompt > context_length:
        problems.append(f"data.max_prompt_length={prompt}")
    if max_new_tokens is not None:
        if prompt is None:
            problems.append("data.max_prompt_length=null (no limit on a sampled prompt)")
        elif prompt + max_new_tokens > context_length:
            problems.append(
                f"data.max_prompt_length + eval.max_new_tokens = {prompt} + {max_new_tokens}"
            )
    if problems:
        raise ConfigError(
            f"{'; '.join(problems)}: longer than the {context_length} positions of model "
            f"{model}; set data.max_length (and data.max_prompt_length, eval.max_new_tokens) so "
            f"that every sequence fits in {context_length} tokens"
        )
