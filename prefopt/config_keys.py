"""A config group read into a frozen dataclass, every key checked, every error naming its key.

A settings class declares one field per key of its group, each with the :class:`Rule` its values
must satisfy and no default: the group's YAML in ``conf/`` is the one place of defaults, and the
composed config carries every key. :meth:`CheckedGroup.from_config` refuses an unknown key (with
the closest valid one), a missing key, and a value its rule does not accept, as
``trainer.lr='abc': expected a positive number``; a class adds rules between keys in ``check``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar

from prefopt.config_values import plain_dict
from prefopt.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What a key accepts; ``expected`` completes "expected ..." in the error message."""

    expected: str
    accepts: Callable[[object], bool]
    convert: Callable[[object], object] = lambda value: value
    choices: tuple[str, ...] = ()  # the valid values of a choice, for "did you mean"


def key(rule: Rule):
    """A settings field checked by ``rule``; it has no default (the YAML has them all)."""
    return field(metadata={"rule": rule})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(minimum: int) -> Rule:
    """An int >= ``minimum`` (a bool or a float such as 2.0 is refused)."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    return Rule(expected, lambda v: _is_int(v) and v >= minimum)


def number(
    minimum: float,
    maximum: float = math.inf,
    *,
    above: bool = False,
    below: bool = False,
) -> Rule:
    """A finite int or float from ``minimum`` to ``maximum`` (``above``/``below``: the bound itself
    excluded), as a float."""
    if maximum == math.inf:
        expected = f"a number {'>' if above else '>='} {minimum:g}"
        expected = "a positive number" if expected == "a number > 0" else expected
    else:
        expected = (
            f"a number in {'(' if above else '['}{minimum:g}, {maximum:g}{')' if below else ']'}"
        )
    return Rule(
        expected,
        lambda v: (
            _is_number(v)
            and (v > minimum if above else v >= minimum)
            and (v < maximum if below else v <= maximum)
        ),
        float,
    )


def choice(options: Sequence[str]) -> Rule:
    """One of ``options``."""
    return Rule(f"one of {', '.join(options)}", lambda v: v in options, choices=tuple(options))


FLAG = Rule("true or false", lambda v: isinstance(v, bool))
NAME = Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v))


def optional(rule: Rule, meaning: str) -> Rule:
    """``rule`` or null; ``meaning`` says what null stands for."""
    return Rule(
        f"{rule.expected} or null ({meaning})",
        lambda v: v is None or rule.accepts(v),
        lambda v: None if v is None else rule.convert(v),
    )


def sequence_of(rule: Rule, expected: str, length: int | None = None) -> Rule:
    """A list (of ``length`` items when given) of values that ``rule`` accepts, as a tuple."""
    return Rule(
        expected,
        lambda v: (
            isinstance(v, Sequence)
            and not isinstance(v, str)
            and (length is None or len(v) == length)
            and all(rule.accepts(item) for item in v)
        ),
        lambda v: tuple(rule.convert(item) for item in v),
    )


class CheckedGroup:
    """Base of a frozen settings dataclass for the config group named by ``GROUP``."""

    GROUP: ClassVar[str]

    @classmethod
    def from_config(cls, cfg, **context):
        """Settings from the group's config (a DictConfig or a mapping); an instance is
        checked again. ``context`` goes to :meth:`check` (for example the number of processes)."""
        if not isinstance(cfg, cls):
            cfg = cls(**cls._checked_values(plain_dict(cfg, cls.GROUP, ConfigError)))
        cfg.check(**context)
        return cfg

    @classmethod
    def _checked_values(cls, values: dict) -> dict:
        names = [f.name for f in fields(cls)]
        for name in sorted(set(values) - set(names)):
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {cls.GROUP}.{close[0]}?" if close else f"valid keys: {names}"
            raise ConfigError(f"{cls.GROUP}.{name}: unknown key; {hint}")
        missing = [name for name in names if name not in values]
        if missing:
            raise ConfigError(
                f"{cls.GROUP}.{missing[0]} is missing (conf/{cls.GROUP}/default.yaml has every "
                f"key of the group; missing: {missing})"
            )
        checked = {}
        for item in fields(cls):
            rule, value = item.metadata["rule"], values[item.name]
            if not rule.accepts(value):
                raise cls.error(f"{item.name}={value!r}: expected {rule.expected}", value, rule)
            checked[item.name] = rule.convert(value)
        return checked

    @classmethod
    def error(cls, message: str, value=None, rule: Rule | None = None) -> ConfigError:
        """A ConfigError for ``<group>.<message>``, with the closest choice when one is near."""
        close = []
        if rule is not None and rule.choices and isinstance(value, str):
            close = difflib.get_close_matches(value, rule.choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return ConfigError(f"{cls.GROUP}.{message}{hint}")

    def check(self) -> None:
        """Rules between keys; none by default."""
