"""Every value in conf/ carries a comment: each leaf key line ends with `# ...`.

A leaf key line is `key: value` with the value on the same line (`hydra.sweeper.params` entries
included). Exempt: the `defaults:` list, keys that only open a mapping or list (`hydra:`, `lora:`),
and comment lines. The test lists every offending file:line at once.
"""

import glob
import re
from pathlib import Path

import pytest
import yaml

CONF = Path(__file__).resolve().parents[1] / "conf"
FILES = sorted(CONF.rglob("*.yaml"))
KEY_LINE = re.compile(r"^\s*(?:-\s+)?(?P<key>[^\s#'\"][^:#]*?|\"[^\"]*\"|'[^']*')\s*:(?:\s+|$)")


def split_comment(text: str) -> tuple[str, str | None]:
    """(value, comment) of what follows a key's colon; a comment is a `#` after whitespace, outside
    quotes (None when there is none)."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip(), text[i:]
    return text.strip(), None


def key_lines(path: Path) -> list[tuple[int, str, bool, bool]]:
    """(line number, key, is a leaf, has a trailing comment) of every key line outside `defaults:`."""
    found = []
    in_defaults = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        top_level = not line[0].isspace() and not line.startswith("-")
        if top_level:
            in_defaults = line.startswith("defaults:")
        if in_defaults:
            continue
        match = KEY_LINE.match(line)
        if match is None:
            continue
        value, comment = split_comment(line[match.end() :])
        found.append((number, match["key"].strip("'\""), bool(value), comment is not None))
    return found


def _mapping_keys(node) -> int:
    """Number of mapping keys in a parsed YAML tree (in nested mappings and lists too)."""
    if isinstance(node, dict):
        return sum(1 + _mapping_keys(value) for value in node.values())
    if isinstance(node, list):
        return sum(_mapping_keys(item) for item in node)
    return 0


def test_the_walk_finds_every_yaml_file():
    counted = glob.glob(str(CONF / "**" / "*.yaml"), recursive=True)
    assert len(FILES) == len(counted) > 50
    assert {p.parent.name for p in FILES} >= {"loss", "trainer", "experiment", "paper", "launcher"}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CONF)) for p in FILES])
def test_the_line_scan_sees_every_key(path):
    """The scanner finds as many key lines as the YAML parser finds keys (defaults list aside)."""
    parsed = yaml.safe_load(path.read_text()) or {}
    parsed.pop("defaults", None)
    assert len(key_lines(path)) == _mapping_keys(parsed)


def test_key_line_scan_on_a_handmade_file(tmp_path):
    text = (
        "# @package _global_\n"
        "defaults:\n"
        "  - override /loss: dpo\n"
        "  - _self_\n"
        "name: x  # commented\n"
        "hydra:\n"
        "  sweeper:\n"
        "    params:\n"
        "      loss.beta: 0.1,0.2\n"
        '      sep: "a # b"\n'
        "      url: http://host/#anchor  # a comment after a # inside the value\n"
    )
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert key_lines(path) == [
        (5, "name", True, True),
        (6, "hydra", False, False),
        (7, "sweeper", False, False),
        (8, "params", False, False),
        (9, "loss.beta", True, False),
        (10, "sep", True, False),
        (11, "url", True, True),
    ]


def test_every_leaf_key_has_a_comment():
    missing = [
        f"{path.relative_to(CONF.parent)}:{number}: {key}"
        for path in FILES
        for number, key, leaf, commented in key_lines(path)
        if leaf and not commented
    ]
    assert not missing, "keys without a trailing comment:\n" + "\n".join(missing)
