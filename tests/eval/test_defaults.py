"""One place for each default: what code reads for a key a mapping leaves out is the YAML's value."""

from pathlib import Path

import pytest
from conftest import build_tokenizer
from omegaconf import OmegaConf

from prefopt.errors import ConfigError
from prefopt.eval.build import prompt_encoder
from prefopt.eval.sample_plan import samples_per_prompt
from prefopt.eval.settings import eval_defaults
from prefopt.models.loading import AS_SAVED, loading_settings

CONF = Path(__file__).resolve().parents[2] / "conf"
EVAL_YAML = OmegaConf.load(CONF / "eval" / "default.yaml")


def test_eval_defaults_are_the_yaml():
    defaults = eval_defaults()
    assert defaults.reference_samples_per_prompt == EVAL_YAML.reference_samples_per_prompt
    assert list(defaults.best_of_n_ns) == list(EVAL_YAML.best_of_n_ns)
    assert defaults.test_at == EVAL_YAML.test_at


def test_left_out_sample_counts_are_the_yaml_and_test_counts_fall_back_to_them():
    counts = samples_per_prompt({}, ["validation", "test"])
    expected = (EVAL_YAML.policy_samples_per_prompt, EVAL_YAML.reference_samples_per_prompt)
    assert (counts["validation"].policy, counts["validation"].reference) == expected
    assert (counts["test"].policy, counts["test"].reference) == expected  # test_* left out
    given = samples_per_prompt({"reference_samples_per_prompt": 3}, ["validation"])
    assert given["validation"].reference == 3


def test_prompt_encoder_reads_the_data_settings():
    """The data group's limits as DataSettings reads them: max_prompt_length keeps the last
    tokens; a data config without the key has no limit."""
    tokenizer = build_tokenizer()
    text = "the cat sat on the mat"  # six words, six ids
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert prompt_encoder(tokenizer, {"source": "d", "max_prompt_length": 4})(text) == ids[-4:]
    assert prompt_encoder(tokenizer, {"source": "d"})(text) == ids
    with pytest.raises(ValueError, match="unknown data config key"):
        prompt_encoder(tokenizer, {"source": "d", "max_prompt_len": 4})


def test_loading_reads_every_key_of_a_model_config():
    hf = OmegaConf.to_container(OmegaConf.load(CONF / "model" / "hf.yaml"))  # name_or_path: ???
    assert loading_settings({}) is AS_SAVED
    assert set(AS_SAVED) <= set(hf)  # each key AS_SAVED stands in for is a model-group key
    settings = loading_settings(hf)
    assert (
        settings["dtype"] == hf["dtype"] != AS_SAVED["dtype"]
    )  # bfloat16, not the empty's float32
    partial = {key: value for key, value in hf.items() if key != "use_safetensors"}
    with pytest.raises(ConfigError, match="model.use_safetensors is missing"):
        loading_settings(partial)


def test_left_out_sampling_keys_are_the_yaml():
    from prefopt.eval.sampling_cache import SamplingSettings

    settings = SamplingSettings.from_config({"max_new_tokens": 4, "top_k": 3})
    assert settings.top_k == 3  # given
    for name in ("temperature", "top_p", "batch_size"):
        assert getattr(settings, name) == EVAL_YAML[name], name
