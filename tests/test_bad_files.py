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
from safetensors.torch import save_file

from prefopt.data import DataError, read_records
from prefopt.errors import UserError
from prefopt.eval import sampling_cache
from prefopt.eval.sampling_cache import SamplingSettings, cached_samples
from prefopt.models.loading import load_causal_lm, load_tokenizer
from prefopt.models.sampling import Samples
from prefopt.trainer.reference import cached_table

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


@pytest.mark.xfail(strict=True, reason="the loader's error names no file")
@pytest.mark.parametrize("keep", [0.5, 5])  # cut in the tensors, cut in the header
def test_truncated_weights_name_the_file(model_dir, tmp_path, keep):
    damaged = damaged_copy(model_dir, tmp_path, "model.safetensors", keep)
    with pytest.raises(UserError, match=re.escape(str(damaged / "model.safetensors"))) as error:
        load_causal_lm(damaged, {})
    assert "truncated or corrupt" in str(error.value)


@pytest.mark.xfail(strict=True, reason="the tokenizer's JSON error names no file")
def test_truncated_tokenizer_names_the_file(model_dir, tmp_path):
    damaged = damaged_copy(model_dir, tmp_path, "tokenizer.json", 40)
    with pytest.raises(UserError, match=re.escape(str(damaged / "tokenizer.json"))):
        load_tokenizer(damaged, {})


@pytest.mark.xfail(strict=True, reason="a missing directory is reported as a bad hub repo id")
def test_a_missing_model_directory_is_named_at_load(tmp_path):
    missing = tmp_path / "no-model"
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(UserError, match=rf"{re.escape(str(missing))}: no such directory"):
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


@pytest.mark.xfail(strict=True, reason="a corrupt reference cache entry fails in safetensors")
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
        table, computed = cached_table(tmp_path, "k", lambda: fresh)
    assert computed and torch.equal(table, fresh)
    assert str(path) in caplog.text and "corrupt" in caplog.text
    assert torch.equal(cached_table(tmp_path, "k", lambda: None)[0], fresh)  # stored again


@pytest.mark.xfail(strict=True, reason="a corrupt sample cache entry fails in json")
@pytest.mark.parametrize("content", ['{"texts": ["a"', '{"texts": ["a"]}'])
def test_corrupt_sample_cache_entry_is_recomputed(tmp_path, caplog, monkeypatch, content):
    drawn = Samples(response_ids=[[4, 1]], texts=["good"], finished=[True])
    calls = []

    def fake_sampler(model, tokenizer, prompt_ids, **kwargs):
        calls.append(len(prompt_ids))
        return drawn

    monkeypatch.setattr(sampling_cache, "sample_responses", fake_sampler)
    kwargs = dict(
        settings=SamplingSettings(max_new_tokens=4),
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
