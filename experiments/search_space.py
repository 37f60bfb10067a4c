"""A loss's search space (conf/experiment/search/<loss>.yaml), its seeded trials and the check that
a chosen value lies strictly inside it.

Each axis is a log-scale range [low, high] of one config key; the pilot grid's ends are the range's
bounds, so a best at a grid end is a best on the boundary: widen that axis (unless the bound is a
named hard limit). Trials are drawn log-uniformly, seeded by the study's seed and the loss's name,
and stored in a trials file so that a resumed study runs the same trials.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

SEARCH_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment" / "search"
METHOD = "run_label"  # the column that names a run's method: its loss, or an online algorithm
BOUND_TOLERANCE = 1e-9  # relative distance in log scale under which a value counts as on a bound


@dataclass(frozen=True)
class SearchSpace:
    """One loss's axes (config key -> (low, high)), pilot grid, trial count and hard limits."""

    loss: str
    headline: bool
    trials: int
    confirm_seeds: int
    space: dict[str, tuple[float, float]]
    pilot: dict[str, tuple[float, ...]]
    hard_limits: dict[str, dict[str, str]]  # key -> {"low"/"high": why that bound cannot move}

    def pilot_runs(self) -> int:
        """Runs of the pilot grid (one seed)."""
        return math.prod(len(values) for values in self.pilot.values())


def load_space(loss: str, search_dir: Path = SEARCH_DIR) -> SearchSpace:
    """The search space of `loss`; refuses a range that is not 0 < low < high or a pilot grid
    whose ends are not the range's bounds."""
    path = search_dir / f"{loss}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no search space for loss {loss!r}: {path} does not exist")
    search = yaml.safe_load(path.read_text())["search"]
    space = {key: (float(low), float(high)) for key, (low, high) in search["space"].items()}
    pilot = {key: tuple(float(v) for v in values) for key, values in search["pilot"].items()}
    for key, (low, high) in space.items():
        if not 0 < low < high:
            raise ValueError(f"{path}: {key} range [{low}, {high}] needs 0 < low < high")
        grid = pilot.get(key, ())
        if len(grid) < 3 or min(grid) != low or max(grid) != high:
            raise ValueError(
                f"{path}: the pilot grid of {key} {list(grid)} needs 3 or more values from "
                f"{low:g} to {high:g} (its ends are the range's bounds)"
            )
    if set(pilot) != set(space):
        raise ValueError(f"{path}: pilot keys {sorted(pilot)} differ from space {sorted(space)}")
    return SearchSpace(
        loss,
        bool(search["headline"]),
        int(search["trials"]),
        int(search["confirm_seeds"]),
        space,
        pilot,
        dict(search.get("hard_limits") or {}),
    )


def draw_trials(space: SearchSpace, seed: int) -> list[dict[str, float]]:
    """`space.trials` settings, each axis log-uniform in its range, seeded by (seed, loss name)."""
    rng = np.random.default_rng([seed, zlib.crc32(space.loss.encode())])
    return [
        {
            key: float(math.exp(rng.uniform(math.log(low), math.log(high))))
            for key, (low, high) in space.space.items()
        }
        for _ in range(space.trials)
    ]


def stored_trials(path: Path, spaces: list[SearchSpace], seed: int) -> dict[str, list[dict]]:
    """Each loss's trials from the trials file at `path`; a loss not in it yet is drawn and added.

    A loss whose stored space or seed differs from the config's is refused: its trials were
    drawn from another space, and a study's space stays fixed once its trials exist."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    changed = False
    for space in spaces:
        ranges = {key: list(bounds) for key, bounds in space.space.items()}
        entry = stored.get(space.loss)
        if entry is None:
            trials = draw_trials(space, seed)
            stored[space.loss] = {"seed": seed, "space": ranges, "trials": trials}
            changed = True
        elif entry["space"] != ranges or entry["seed"] != seed:
            raise ValueError(
                f"{path}: {space.loss}'s trials were drawn with seed {entry['seed']} from "
                f"{entry['space']}, the config now says seed {seed} and {ranges}; use a new study "
                "name (a study's trials are fixed once drawn)"
            )
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return {space.loss: stored[space.loss]["trials"] for space in spaces}


def position(space: SearchSpace, key: str, value: float) -> str:
    """ "inside" when low < value < high strictly (in log scale, past BOUND_TOLERANCE), else
    "low" or "high" (the bound it sits on or lies beyond)."""
    low, high = space.space[key]
    where = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if where <= BOUND_TOLERANCE:
        return "low"
    if where >= 1 - BOUND_TOLERANCE:
        return "high"
    return "inside"


def inside_verdicts(space: SearchSpace, setting: dict[str, float]) -> dict[str, str]:
    """Per axis: "inside", "at hard limit (<side>: <why>)", or "widen <side> (<value> at the
    bound <bound>)"."""
    verdicts = {}
    for key, (low, high) in space.space.items():
        side = position(space, key, setting[key])
        if side == "inside":
            verdicts[key] = "inside"
        elif side in space.hard_limits.get(key, {}):
            verdicts[key] = f"at hard limit ({side}: {space.hard_limits[key][side]})"
        else:
            bound = low if side == "low" else high
            verdicts[key] = f"widen {side} ({setting[key]:.3g} at the bound {bound:g})"
    return verdicts
