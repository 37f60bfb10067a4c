"""Registry, docs, config files, plugins (decorator, entry point, _target_), combinations."""

import importlib.metadata
import math
from pathlib import Path

import pytest
import torch
from loss_inputs import PAIRS, paired
from omegaconf import OmegaConf

from prefopt.losses import (
    CAPABILITY_FLAGS,
    ENTRY_POINT_GROUP,
    CombinedLoss,
    LossOutput,
    PairedLogps,
    PreferenceLoss,
    available_losses,
    build_loss,
    build_loss_from_config,
    describe_losses,
    loss_class,
    register_loss,
)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "loss"
BUILT_IN = available_losses()


class TargetPlugin(PreferenceLoss):
    """A loss reached only by its import path: L = scale * (rejected_logps - chosen_logps)."""

    name = "target_plugin"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1

    def __init__(self, *, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def compute(self, inputs: PairedLogps) -> LossOutput:
        losses = self.scale * (inputs.rejected_logps - inputs.chosen_logps)
        return LossOutput(losses, inputs.chosen_logps, inputs.rejected_logps, {})


class EntryPointPlugin(TargetPlugin):
    """The same loss, published through the ``prefopt.losses`` entry-point group."""

    name = "entry_point_plugin"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1


def test_the_issue_losses_are_registered():
    expected = {"dpo", "ipo", "kto", "orpo", "simpo", "hinge", "robust", "r_dpo", "bco_pair"}
    expected |= {"nca_pair", "apo_zero", "apo_down", "sppo_hard", "exo_pair", "dpop", "sft"}
    assert expected <= set(BUILT_IN)
    assert sorted(BUILT_IN) == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_loss_declares_its_capabilities_in_its_own_body(name):
    cls = loss_class(name)
    for flag in (*CAPABILITY_FLAGS, "uses_lengths"):
        assert flag in cls.__dict__, (name, flag)
    assert cls.name == name
    assert cls.min_batch_size == (2 if name in ("kto", "aot", "aot_unpaired") else 1)
    assert cls.whole_batch == (name in ("aot", "aot_unpaired"))  # they sort across the batch
    assert build_loss(name).hyperparameter_values() == cls.hyperparameters()


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_loss_is_documented(name):
    doc = loss_class(name).__doc__
    assert "arXiv" in doc
    for hyperparameter in loss_class(name).hyperparameters():
        assert f"{hyperparameter}:" in doc, (name, hyperparameter)
    assert f"`{name}`" in describe_losses()


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_loss_builds_from_its_config_file(name):
    path = CONF_DIR / f"{name}.yaml"
    cfg = OmegaConf.load(path)
    assert cfg.name == name
    assert set(cfg) == {"name", *loss_class(name).hyperparameters()}
    loss = build_loss_from_config(cfg)
    assert type(loss) is loss_class(name)
    assert build_loss_from_config(OmegaConf.to_container(cfg)).hyperparameter_values() == dict(
        loss.hyperparameter_values()
    )


def test_config_files_are_one_per_loss_plus_the_rpo_combination():
    names = sorted(path.stem for path in CONF_DIR.glob("*.yaml"))
    assert names == sorted([*BUILT_IN, "combined_rpo"])


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_key_has_a_comment(path):
    for line in path.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            assert " # " in line, f"{path.name}: no comment on {line!r}"


def test_unknown_loss_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown loss 'dpo2'.*dpo, dpop"):
        build_loss("dpo2")


def test_unknown_hyperparameter_names_the_valid_ones():
    with pytest.raises(ValueError, match="no hyperparameter 'gamma'.*beta, label_smoothing"):
        build_loss("dpo", gamma=1.0)
    with pytest.raises(ValueError, match="no hyperparameter 'beta'.*none"):
        build_loss_from_config({"name": "sft", "beta": 0.1})


def test_config_without_name_or_target_is_refused():
    with pytest.raises(ValueError, match="needs 'name' or '_target_'"):
        build_loss_from_config({"beta": 0.1})


def test_a_plugin_registered_by_decorator_works_like_a_built_in(isolated_registry):
    @register_loss
    class MarginPlugin(TargetPlugin):
        """Registered from a test module."""

        name = "margin_plugin"
        requires_reference = False
        data_format = "paired"
        stateful = False
        min_batch_size = 1

    assert "margin_plugin" in available_losses()
    loss = build_loss_from_config({"name": "margin_plugin", "scale": 2.0})
    assert isinstance(loss, MarginPlugin)
    assert loss(paired()).losses.tolist() == pytest.approx([-2.0, 4.0, -1.0])  # 2 (l - w)


def test_a_plugin_from_an_entry_point_is_loaded_only_when_asked_for(isolated_registry, monkeypatch):
    entry_point = importlib.metadata.EntryPoint(
        name="entry_point_plugin", value=f"{__name__}:EntryPointPlugin", group=ENTRY_POINT_GROUP
    )

    def entry_points(group):
        return [entry_point] if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert "entry_point_plugin" in available_losses()
    assert "entry_point_plugin" not in isolated_registry._REGISTRY  # listed, not yet loaded
    loss = build_loss("entry_point_plugin", scale=3.0)
    assert isinstance(loss, EntryPointPlugin)
    assert isolated_registry._REGISTRY["entry_point_plugin"] is EntryPointPlugin
    assert loss(paired()).losses.tolist() == pytest.approx([-3.0, 6.0, -1.5])


def test_a_target_plugin_builds_without_registering():
    cfg = OmegaConf.create({"_target_": f"{__name__}.TargetPlugin", "scale": 0.5})
    loss = build_loss_from_config(cfg)
    assert isinstance(loss, TargetPlugin)
    assert "target_plugin" not in available_losses()
    assert loss(paired()).losses.tolist() == pytest.approx([-0.5, 1.0, -0.25])
    built_in = build_loss_from_config({"_target_": "prefopt.losses.dpo.DPOLoss", "beta": 0.3})
    assert built_in.beta == 0.3


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="not a subclass of prefopt.losses.PreferenceLoss"):
        build_loss_from_config({"_target_": "torch.nn.Linear"})
    with pytest.raises(ValueError, match="cannot import module"):
        build_loss_from_config({"_target_": "no_such_module.Loss"})
    with pytest.raises(ValueError, match="has no 'NoSuchLoss'"):
        build_loss_from_config({"_target_": "prefopt.losses.dpo.NoSuchLoss"})


def test_classes_that_inherit_their_capabilities_are_refused(isolated_registry):
    class Silent(TargetPlugin):
        name = "silent"  # the other flags inherited from TargetPlugin

    with pytest.raises(ValueError, match="must set requires_reference, data_format"):
        register_loss(Silent)


def test_positional_hyperparameters_are_refused(isolated_registry):
    class Positional(TargetPlugin):
        name = "positional"
        requires_reference = False
        data_format = "paired"
        stateful = False
        min_batch_size = 1

        def __init__(self, scale=1.0):
            super().__init__(scale=scale)

    with pytest.raises(ValueError, match="keyword-only with defaults: scale"):
        register_loss(Positional)


def test_names_cannot_be_taken_twice_or_be_combined(isolated_registry):
    class Impostor(TargetPlugin):
        name = "dpo"
        requires_reference = False
        data_format = "paired"
        stateful = False
        min_batch_size = 1

    with pytest.raises(ValueError, match="already registered"):
        register_loss(Impostor)
    Impostor.name = "combined"
    with pytest.raises(ValueError, match="reserved"):
        register_loss(Impostor)


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_combined_rpo_equals_the_weighted_sum_by_hand():
    loss = build_loss_from_config(OmegaConf.load(CONF_DIR / "combined_rpo.yaml"))
    assert isinstance(loss, CombinedLoss)
    assert loss.requires_reference and loss.data_format == "paired" and not loss.stateful
    out = loss(paired())
    delta = [1.5, -1.5, 0.7]
    nll = [-c / n for c, n in zip(PAIRS["chosen_logps"], PAIRS["chosen_lengths"], strict=True)]
    expected = [-log_sigmoid(0.1 * d) + 0.2 * x for d, x in zip(delta, nll, strict=True)]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-5)
    assert out.chosen_rewards.tolist() == pytest.approx([0.05, -0.1, 0.02], rel=1e-5)  # DPO's
    assert out.metrics["sft/loss"].item() == pytest.approx(sum(nll) / 3, rel=1e-5)
    assert set(out.metrics) == {"dpo/loss", "sft/loss"}


def test_combined_prefixes_metrics_and_numbers_repeated_components():
    loss = build_loss_from_config(
        {
            "name": "combined",
            "components": [
                {"name": "orpo", "beta": 0.1},
                {"name": "orpo", "beta": 0.3, "weight": 0.5},
            ],
        }
    )
    assert not loss.requires_reference
    out = loss(paired(reference=False))
    first = build_loss("orpo", beta=0.1)(paired(reference=False)).losses
    second = build_loss("orpo", beta=0.3)(paired(reference=False)).losses
    assert torch.allclose(out.losses, first + 0.5 * second)
    assert {"orpo_0/nll", "orpo_1/log_odds_ratio", "orpo_1/loss"} <= set(out.metrics)


def test_combined_refuses_mixed_data_formats_and_bad_configs():
    with pytest.raises(ValueError, match="share one data_format.*kto: unpaired"):
        build_loss_from_config(
            {"name": "combined", "components": [{"name": "dpo"}, {"name": "kto"}]}
        )
    with pytest.raises(ValueError, match="non-empty list"):
        build_loss_from_config({"name": "combined", "components": []})
    with pytest.raises(ValueError, match="takes only 'components'"):
        build_loss_from_config({"name": "combined", "components": [{"name": "dpo"}], "beta": 1})
    with pytest.raises(ValueError, match="weight must be a finite number"):
        build_loss_from_config({"name": "combined", "components": [{"name": "dpo", "weight": "x"}]})


def test_combined_takes_the_strictest_capabilities():
    loss = build_loss_from_config(
        {"name": "combined", "components": [{"name": "kto"}, {"name": "kto", "beta": 0.5}]}
    )
    assert loss.data_format == "unpaired" and loss.min_batch_size == 2
    stateful = build_loss_from_config(
        {"name": "combined", "components": [{"name": "sft"}, {"name": "bco_pair"}]}
    )
    assert stateful.stateful and stateful.requires_reference
    assert "components.1.running_mean_reward" in stateful.state_dict()


def shifted_batch(shift):
    """The shared pairs with log-ratios Δ_w = shift and Δ_l = -shift / 2 (mean reward > 0)."""
    return paired(
        chosen_logps=[r + shift for r in PAIRS["ref_chosen_logps"]],
        rejected_logps=[r - shift / 2 for r in PAIRS["ref_rejected_logps"]],
    )


def test_bco_pair_state_dict_round_trip_continues_identically():
    trained = build_loss("bco_pair", beta=0.5)
    for shift in (0.3, 1.0, 2.5):
        trained(shifted_batch(shift))
    resumed = build_loss("bco_pair", beta=0.5)
    resumed.load_state_dict(trained.state_dict())
    fresh = build_loss("bco_pair", beta=0.5)
    after_trained, after_resumed = trained(shifted_batch(4.0)), resumed(shifted_batch(4.0))
    assert torch.equal(after_trained.losses, after_resumed.losses)
    assert torch.equal(trained.running_mean_reward, resumed.running_mean_reward)
    assert int(resumed.num_batches) == 4
    assert not torch.equal(fresh(shifted_batch(4.0)).losses, after_resumed.losses)


def test_hydra_composes_every_loss_config():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR.parent), version_base=None):
        for path in sorted(CONF_DIR.glob("*.yaml")):
            cfg = compose(overrides=[f"+loss={path.stem}"])
            assert isinstance(build_loss_from_config(cfg.loss), PreferenceLoss), path.name
