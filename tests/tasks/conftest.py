"""Fixtures: the tiny reviews and constraints configs and their artifacts, built once per test session,
and the digests of a build's files."""

import hashlib
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from prefopt.tasks import build_task

CONF = Path(__file__).resolve().parents[2] / "conf"


def task_params(preset: str) -> dict:
    """The ``task`` mapping that ``task=<preset>`` composes (a preset may inherit another's), as a
    plain dict."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={preset}"])
    return OmegaConf.to_container(cfg.task, resolve=True)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest (and reproducibly) on one thread; restore the setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def preset_params():
    """Function: preset name -> its task parameters."""
    return task_params


def digests(artifacts) -> dict[str, str]:
    """sha256 of a build's weights and data files, by path under its root."""
    files = [
        artifacts.model_dir / "model.safetensors",
        *artifacts.data_files.values(),
        *artifacts.unpaired_files.values(),
        *artifacts.prompt_files.values(),
    ]
    return {
        str(path.relative_to(artifacts.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files
    }


@pytest.fixture(scope="session")
def file_digests():
    """Function: built artifacts -> sha256 of their weights and data files."""
    return digests


@pytest.fixture(scope="session")
def tiny_params() -> dict:
    return task_params("reviews_tiny")


@pytest.fixture(scope="session")
def tiny_task(tiny_params):
    return build_task(tiny_params)


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_task, tmp_path_factory):
    return tiny_task.prepare(tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="session")
def constraints_tiny_params() -> dict:
    return task_params("constraints_tiny")


@pytest.fixture(scope="session")
def constraints_tiny_task(constraints_tiny_params):
    return build_task(constraints_tiny_params)


@pytest.fixture(scope="session")
def constraints_tiny_artifacts(constraints_tiny_task, tmp_path_factory):
    return constraints_tiny_task.prepare(tmp_path_factory.mktemp("constraints"), progress=False)


@pytest.fixture(scope="session")
def pretrained_is_base_stage():
    """Function: (an SFT build, its task parameters) -> the ``reference: pretrained`` build, after
    asserting that it is the cached base stage (``assert_pretrained_is_the_base_stage``)."""
    return assert_pretrained_is_the_base_stage


def assert_pretrained_is_the_base_stage(sft_artifacts, params: dict):
    """Build ``params`` with ``reference: pretrained`` in ``sft_artifacts``'s cache: pi_ref is the
    cached base stage byte for byte, the prompts are the SFT build's, the pairs are not. Returns
    the build. (Files are compared within one machine: another CPU trains other weights.)"""
    from prefopt.tasks import build_task
    from prefopt.tasks.synthetic import settings_hash

    cache = sft_artifacts.root.parents[1]
    task = build_task({**params, "reference": "pretrained"})
    built = task.prepare(cache, progress=False)
    stage = (
        cache
        / "tasks"
        / "stages"
        / f"{task.name}-pretrained-{settings_hash(task, task.base_fields)}"
    )
    weights = (built.model_dir / "model.safetensors").read_bytes()
    assert weights == (stage / "model.safetensors").read_bytes()
    pretrained, sft = digests(built), digests(sft_artifacts)
    assert pretrained["prompts/test.jsonl"] == sft["prompts/test.jsonl"]
    assert pretrained["pairs/train.jsonl"] != sft["pairs/train.jsonl"]
    assert pretrained["model/model.safetensors"] != sft["model/model.safetensors"]
    return built
