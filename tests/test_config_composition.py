"""Every file in conf/ composes into a full config (a test walks the tree and counts)."""

from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "conf"


def _option(path: Path) -> tuple[str, str]:
    """(group, option) of a config file: conf/experiment/compare/dpo.yaml -> (experiment, compare/dpo)."""
    group, *rest = path.relative_to(CONF).with_suffix("").parts
    return group, "/".join(rest)


ACCELERATE = CONF / "accelerate"  # accelerate launch's config files, not a Hydra group
HYDRA_FILES = [p for p in CONF.rglob("*.yaml") if ACCELERATE not in p.parents]
OPTIONS = sorted(_option(p) for p in HYDRA_FILES if p.parent != CONF)


def test_conf_tree_is_walked():
    groups = {group for group, _ in OPTIONS}
    assert {
        "loss",
        "model",
        "data",
        "judge",
        "task",
        "trainer",
        "eval",
        "logger",
        "launcher",
        "experiment",
    } <= groups
    assert len(OPTIONS) == len(HYDRA_FILES) - 1  # every Hydra file but config.yaml
    assert len(HYDRA_FILES) + len(list(ACCELERATE.glob("*.yaml"))) == len(
        list(CONF.rglob("*.yaml"))
    )


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}/{o}" for g, o in OPTIONS])
def test_every_config_file_composes(group, option, compose_config):
    overrides = [f"{group}={option}"]
    if group == "model" and option == "hf":
        overrides.append("model.name_or_path=some/model")
    cfg = compose_config(overrides, hydra=True)
    assert cfg.hydra.runtime.choices[group] == option
    for key in ("loss", "model", "data", "trainer", "eval"):
        assert key in cfg
    assert cfg.loss.get("name") or cfg.loss.get("_target_")


def test_experiment_values_beat_the_primary_config_and_lose_to_the_command_line(
    compose_config,
):
    cfg = compose_config(["experiment=noise/cdpo", "task.flip_rate=0.2"], hydra=True)
    assert (cfg.name, cfg.run_label, cfg.loss.name) == ("noise", "cdpo", "dpo")
    assert cfg.loss.label_smoothing == 0.2  # tied to the task's flip rate
    cfg = compose_config(["experiment=overfit", "trainer.epochs=3"], hydra=True)
    assert cfg.trainer.epochs == 3 and cfg.trainer.lr == 5.0e-4
