"""The README's loss table, generated from the registry and ``conf/loss/``.

    python -m prefopt.losses.table        # prints the markdown table

One row per built-in loss (a class of this package in the registry): whether it needs a reference
model, its data format, its hyperparameters with the values ``loss=<name>`` gives (the class defaults
overlaid with ``conf/loss/<name>.yaml``) and its paper (the docstring's first line and arXiv id).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from omegaconf import OmegaConf

from prefopt.losses.registry import available_losses, build_loss_from_config, loss_class

HEADER = (
    "| loss | reference | data | hyperparameters (`conf/loss` defaults) | paper |",
    "|---|---|---|---|---|",
)
ARXIV_ID = re.compile(r"arXiv (\d{4}\.\d{4,5})")


def loss_config_dir() -> Path:
    """``conf/loss/``, where ``loss=<name>`` is read from."""
    from prefopt.train import CONFIG_DIR

    return Path(CONFIG_DIR) / "loss"


def built_in_losses() -> list[str]:
    """Registered losses defined in this package (installed plugins left out), sorted."""
    return [n for n in available_losses() if loss_class(n).__module__.startswith(__package__)]


def config_defaults(name: str) -> dict[str, object]:
    """The hyperparameters ``loss=<name>`` builds: class defaults overlaid with the config file's."""
    path = loss_config_dir() / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"loss {name!r} has no config file {path}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if cfg.get("name") != name:
        raise ValueError(f"{path} sets name: {cfg.get('name')!r}, expected {name!r}")
    loss = build_loss_from_config(cfg)  # refuses keys the loss does not take
    return loss.hyperparameter_values()


def format_value(value: object) -> str:
    """A value as it is written on the command line (true/false for booleans)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def paper(cls: type) -> str:
    """The docstring's first line, with the arXiv id found anywhere in the docstring."""
    doc = inspect.getdoc(cls) or ""
    arxiv = ARXIV_ID.search(doc)
    summary = doc.split("\n", 1)[0].rstrip(".")
    return summary + (f" (arXiv {arxiv.group(1)})" if arxiv else "")


def loss_table() -> str:
    """The markdown table of the built-in losses with the defaults users get."""
    rows = list(HEADER)
    for name in built_in_losses():
        cls = loss_class(name)
        values = config_defaults(name)
        hyperparameters = ", ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "-"
        reference = "yes" if cls.requires_reference else "no"
        rows.append(
            f"| `{name}` | {reference} | {cls.data_format} | {hyperparameters} | {paper(cls)} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(loss_table())
