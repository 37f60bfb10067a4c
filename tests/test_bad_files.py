"""Bad files and caches fail with one clear message naming the file and what to do.

Models, data files and cache entries are built here and then broken (truncated, overwritten with
garbage); each failure is a `UserError` whose message names the broken file, or, for a cache entry
that can be recomputed, the entry is recomputed with a warning naming it.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hub_constants
from omegaconf import OmegaConf
from safetensors.torch import save_file
from transformers import LlamaConfig, MambaConfig

from prefopt.data import DataError, check_lengths_fit_context, read_records
from prefopt.errors import ConfigError, ModelError
from prefopt.eval import sampling_cache
from prefopt.eval.sampling_cache import SamplingSettings, cached_samples
from prefopt.models.loading import (
    check_model_source,
    load_causal_lm,
    load_tokenizer,
    model_context_length,
)
from prefopt.models.sampling import Samples
from prefopt.trainer.reference_tables import cached_table

sys.path.insert(0, str(Path(__file__).resolve().parent / "trainer"))
from tiny import build_model_dir, write_pairs  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 and its tokenizer saved with save_pretrained (copied before any damage)."""
    return build_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def damaged_copy(model_dir: Path, tmp_path: Path, name: str, keep: int | float) -> Path:
    """A copy of `model_dir` whose file `name` keeps its first `keep` bytes (a fraction if < 1)."""
    copy = shutil.copytree(model_dir, tmp_path / "damaged")
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    return copy


@pytest.mark.parametrize("keep", [0.5, 5])  # cut in the tensors, cut in the header
def test_truncated_weights_name_the_file(model_dir, tmp_path, keep):
    damaged = damaged_copy(model_dir, tmp_path, "model.safetensors", keep)
    with pytest.raises(ModelError, match=re.escape(str(damaged / "model.safetensors"))) as error:
        load_causal_lm(damaged, {})
    assert "truncated or corrupt" in str(error.value)


def test_truncated_tokenizer_names_the_file(model_dir, tmp_path):
    damaged = damaged_copy(model_dir, tmp_path, "tokenizer.json", 40)
    with pytest.raises(ModelError, match=re.escape(str(damaged / "tokenizer.json"))):
        load_tokenizer(damaged, {})


def test_a_missing_model_directory_is_named_at_load(tmp_path):
    missing = tmp_path / "no-model"
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(ModelError, match=rf"{re.escape(str(missing))}: no such directory"):
            load(missing, {})


def test_truncated_jsonl_gz_names_the_file_and_what_to_do(tmp_path):
    plain = write_pairs(tmp_path / "pairs.jsonl", 50)
    packed = gzip.compress(plain.read_bytes())
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=re.escape(str(path))) as error:
        read_records({"source": str(path)}, "train")
    assert "truncated or corrupt gzip file" in str(error.value)
    assert "write it again" in str(error.value)


@pytest.mark.parametrize("content", ["garbage", "wrong_shape"])
def test_corrupt_reference_cache_entry_is_recomputed(tmp_path, caplog, content):
    path = tmp_path / "reference_logps" / "k.safetensors"
    path.parent.mkdir()
    if content == "garbage":
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    else:
        save_file({"logps": torch.zeros(3)}, str(path))
    fresh = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    with caplog.at_level(logging.WARNING):
        columns, computed = cached_table(tmp_path, "k", lambda: {"logps": fresh})
    assert computed and torch.equal(columns["logps"], fresh)
    assert str(path) in caplog.text and "corrupt" in caplog.text
    assert torch.equal(cached_table(tmp_path, "k", lambda: None)[0]["logps"], fresh)  # stored


@pytest.mark.parametrize("content", ['{"texts": ["a"', '{"texts": ["a"]}'])
def test_corrupt_sample_cache_entry_is_recomputed(tmp_path, caplog, monkeypatch, content):
    drawn = Samples(response_ids=[[4, 1]], texts=["good"], finished=[True])
    calls = []

    def fake_sampler(model, tokenizer, prompt_ids, **kwargs):
        calls.append(len(prompt_ids))
        return drawn

    monkeypatch.setattr(sampling_cache, "sample_responses", fake_sampler)
    kwargs = dict(
        settings=SamplingSettings.from_config({"max_new_tokens": 4}),
        seed=0,
        cache_dir=tmp_path,
        model_key="m",
        label="pi_ref",
    )
    assert cached_samples(None, None, [[3]], **kwargs) == drawn
    (entry,) = (tmp_path / "reference_samples").glob("*.json")
    entry.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert cached_samples(None, None, [[3]], **kwargs) == drawn
    assert calls == [1, 1]
    assert str(entry) in caplog.text and "corrupt" in caplog.text
    assert json.loads(entry.read_text())["texts"] == ["good"]


def fake_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """A hub cache holding `model_dir` as the snapshot of `repo_id` at main; its snapshot path."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    return shutil.copytree(model_dir, repo / "snapshots" / ("0" * 40))


def test_check_model_source_tells_a_missing_directory_from_a_hub_id(
    model_dir, tmp_path, monkeypatch
):
    check_model_source(model_dir, "model.name_or_path")
    missing = tmp_path / "models" / "policy"
    for text in (str(missing), "./models/policy", "a/b/c"):
        with pytest.raises(ConfigError, match=r"model\.name_or_path=.*: no such directory"):
            check_model_source(text, "model.name_or_path")
    with pytest.raises(ConfigError, match=re.escape(f"{missing.parent}: no such directory")):
        check_model_source(str(missing.parent), "k")
    with pytest.raises(ConfigError, match="has no config.json"):
        check_model_source(tmp_path, "model.reference_name_or_path")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    check_model_source("prefopt-tests/not-on-any-hub", "model.name_or_path")  # the hub decides
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ConfigError, match=r"model\.name_or_path='org/m'.*not in the local hub cache"
    ):
        check_model_source("org/m", "model.name_or_path")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    fake_hub_cache(tmp_path / "hub", "org/m", model_dir)
    check_model_source("org/m", "model.name_or_path")


def test_a_corrupt_hub_cache_copy_says_to_delete_it(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = fake_hub_cache(tmp_path / "hub", "org/m", model_dir)
    (snapshot / "model.safetensors").write_bytes(b"\x00" * 4)
    repo = tmp_path / "hub" / "models--org--m"
    with pytest.raises(ModelError, match=re.escape(f"delete {repo} and download")):
        load_causal_lm("org/m", {})


def test_model_context_length_reads_the_config_only(model_dir, tmp_path):
    assert model_context_length(model_dir) == 64  # the tiny GPT-2's n_positions
    weightless = shutil.copytree(model_dir, tmp_path / "config-only")
    (weightless / "model.safetensors").unlink()
    assert model_context_length(weightless) == 64
    LlamaConfig(max_position_embeddings=32).save_pretrained(tmp_path / "llama")
    assert model_context_length(tmp_path / "llama") == 32
    MambaConfig().save_pretrained(tmp_path / "mamba")
    assert model_context_length(tmp_path / "mamba") is None  # no position limit
    (weightless / "config.json").write_text("{")
    with pytest.raises(ModelError, match=re.escape(str(weightless / "config.json"))):
        model_context_length(weightless)


def test_the_jsonl_default_max_length_is_refused_for_a_short_model(model_dir):
    """conf/data/jsonl.yaml's 512 tokens crash a 64-position model in its forward pass; the check
    refuses them first, naming the key and the model's limit."""
    jsonl = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "data" / "jsonl.yaml")
    data = {key: jsonl[key] for key in ("max_prompt_length", "max_response_length", "max_length")}
    model = load_causal_lm(model_dir, {})
    with pytest.raises(IndexError):
        model(torch.zeros((1, data["max_length"]), dtype=torch.long))
    with pytest.raises(ConfigError, match="data.max_length=512.*the 64 positions of model"):
        check_lengths_fit_context(
            {"source": "d.jsonl", **data}, model_context_length(model_dir), str(model_dir)
        )
