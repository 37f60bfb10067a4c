"""The KL coefficient beta of the KL-penalised reward: fixed, or adapted towards a target KL.

Fine-Tuning Language Models from Human Preferences.
Ziegler, Stiennon, Wu, Brown, Radford, Amodei, Christiano, Irving, arXiv 1909.08593.

The adaptive controller (the paper's Sec. 2.2, a proportional controller in log-space) updates,
after each batch of rollouts whose measured KL(pi || pi_ref) per response is ``kl``:

    error = clip(kl / target - 1, -0.2, 0.2)
    beta <- beta * (1 + error * n_steps / horizon)

(the paper's beta_{t+1} = beta_t (1 + K_beta e_t) with K_beta = n_steps / horizon, as its code and
TRL's former AdaptiveKLController write it). ``target`` is the KL per response to hold;
``horizon`` is how many samples (n_steps: the batch's number of samples) it takes to close the gap,
so a larger horizon moves beta more slowly. The clip bounds each update to a factor within
1 +/- 0.2 * n_steps / horizon; an update that could reach 0 (n_steps >= 5 * horizon) is refused.
A fixed controller keeps beta. Both save beta in ``state_dict``, so that a resumed run continues
from the same coefficient.
"""

from __future__ import annotations

import math

ERROR_CLIP = 0.2  # bound on the proportional error kl / target - 1 (the paper's 0.2)


class FixedKLController:
    """beta constant at ``kl_coef`` (>= 0)."""

    def __init__(self, kl_coef: float):
        _check_finite("kl_coef", kl_coef)
        if kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0; got {kl_coef}")
        self.kl_coef = float(kl_coef)

    def update(self, kl: float, n_steps: int) -> float:
        """Leave beta as it is; returns it."""
        _check_update(kl, n_steps)
        return self.kl_coef

    def state_dict(self) -> dict[str, float]:
        return {"kl_coef": self.kl_coef}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.kl_coef = _loaded_kl_coef(state)


class AdaptiveKLController:
    """Ziegler et al.'s controller: beta starts at ``init_kl_coef`` (> 0) and moves towards the
    beta that holds the KL per response at ``target`` (> 0) over ``horizon`` (> 0) samples."""

    def __init__(self, init_kl_coef: float, target: float, horizon: float):
        for name, value in (
            ("init_kl_coef", init_kl_coef),
            ("target", target),
            ("horizon", horizon),
        ):
            _check_finite(name, value)
            if value <= 0:
                raise ValueError(f"{name} must be > 0; got {value}")
        self.kl_coef = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, kl: float, n_steps: int) -> float:
        """One update after a batch of ``n_steps`` samples whose mean KL per response is ``kl``;
        returns the new beta."""
        _check_update(kl, n_steps)
        if n_steps * ERROR_CLIP >= self.horizon:
            raise ValueError(
                f"n_steps={n_steps} >= horizon / {ERROR_CLIP} = {self.horizon / ERROR_CLIP}: "
                "one update could drive beta to 0 or below"
            )
        error = min(max(kl / self.target - 1.0, -ERROR_CLIP), ERROR_CLIP)
        self.kl_coef *= 1.0 + error * n_steps / self.horizon
        return self.kl_coef

    def state_dict(self) -> dict[str, float]:
        return {"kl_coef": self.kl_coef}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.kl_coef = _loaded_kl_coef(state)


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")


def _check_update(kl: float, n_steps: int) -> None:
    _check_finite("kl", kl)
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0; got {n_steps}")


def _loaded_kl_coef(state: dict[str, float]) -> float:
    if set(state) != {"kl_coef"}:
        raise ValueError(f"a KL controller's state is {{'kl_coef': ...}}; got keys {sorted(state)}")
    kl_coef = float(state["kl_coef"])
    _check_finite("kl_coef", kl_coef)
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0; got {kl_coef}")
    return kl_coef
