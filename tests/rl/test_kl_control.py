"""prefopt.rl.kl_control: the fixed and adaptive (Ziegler et al.) KL coefficients."""

import pytest

from prefopt.rl.kl_control import AdaptiveKLController, FixedKLController

INIT, TARGET, HORIZON, BATCH = 0.1, 6.0, 10000.0, 512


def adaptive():
    return AdaptiveKLController(init_kl_coef=INIT, target=TARGET, horizon=HORIZON)


def test_beta_rises_when_the_kl_is_above_target():
    controller = adaptive()
    error = 6.6 / 6.0 - 1.0  # 0.1, inside the clip
    assert controller.update(6.6, BATCH) == pytest.approx(INIT * (1 + error * BATCH / HORIZON))
    assert controller.kl_coef > INIT


def test_beta_falls_when_the_kl_is_below_target():
    controller = adaptive()
    error = 5.7 / 6.0 - 1.0  # -0.05
    assert controller.update(5.7, BATCH) == pytest.approx(INIT * (1 + error * BATCH / HORIZON))
    assert controller.kl_coef < INIT


def test_beta_stays_at_the_target():
    controller = adaptive()
    assert controller.update(TARGET, BATCH) == pytest.approx(INIT)


def test_the_error_is_clipped_at_plus_and_minus_0_2():
    far_above, just_past = adaptive(), adaptive()
    far_above.update(1000.0, BATCH)
    just_past.update(9.0, BATCH)  # 9 / 6 - 1 = 0.5, already past the clip
    assert far_above.kl_coef == pytest.approx(INIT * (1 + 0.2 * BATCH / HORIZON))
    assert far_above.kl_coef == just_past.kl_coef
    below = adaptive()
    below.update(0.0, BATCH)  # 0 / 6 - 1 = -1
    assert below.kl_coef == pytest.approx(INIT * (1 - 0.2 * BATCH / HORIZON))


def test_updates_compound():
    controller = adaptive()
    controller.update(9.0, BATCH)
    controller.update(3.0, BATCH)
    factor = BATCH / HORIZON
    assert controller.kl_coef == pytest.approx(INIT * (1 + 0.2 * factor) * (1 - 0.2 * factor))


def test_a_resumed_controller_continues_from_the_saved_beta():
    first = adaptive()
    first.update(9.0, BATCH)
    resumed = adaptive()
    resumed.load_state_dict(first.state_dict())
    assert resumed.kl_coef == first.kl_coef != INIT
    assert resumed.update(7.0, BATCH) == first.update(7.0, BATCH)


def test_the_fixed_controller_keeps_beta_and_its_state():
    controller = FixedKLController(0.05)
    assert controller.update(100.0, BATCH) == 0.05
    other = FixedKLController(0.3)
    other.load_state_dict(controller.state_dict())
    assert other.kl_coef == 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init_kl_coef": 0.0}, "init_kl_coef"),
        ({"target": 0.0}, "target"),
        ({"target": -1.0}, "target"),
        ({"horizon": 0.0}, "horizon"),
        ({"target": float("nan")}, "finite"),
    ],
)
def test_the_adaptive_constructor_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveKLController(
            **{"init_kl_coef": INIT, "target": TARGET, "horizon": HORIZON, **kwargs}
        )


def test_a_negative_fixed_coefficient_is_refused():
    with pytest.raises(ValueError, match="kl_coef"):
        FixedKLController(-0.1)


def test_an_update_that_could_drive_beta_to_zero_is_refused():
    with pytest.raises(ValueError, match="beta to 0"):
        AdaptiveKLController(INIT, TARGET, horizon=100.0).update(1.0, n_steps=500)


def test_a_state_with_other_keys_is_refused():
    with pytest.raises(ValueError, match="kl_coef"):
        adaptive().load_state_dict({"beta": 0.2})
