"""The README's quick start: two commands; the main job's parts run here end to end (slow tier)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_quick_start_is_two_commands_ending_in_the_main_job_and_the_tests():
    commands = _quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main_job, tests = commands
    assert "python -m prefopt.train -m experiment=main" in main_job
    assert main_job.endswith("python -m prefopt.report multirun/main")
    assert tests.endswith("python -m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q" in ci  # CI runs the README's test command


@pytest.mark.slow
def test_main_job_runs_and_reports(tmp_path):
    """The main job's two parts, as the README runs them, in a fresh cache and sweep directory."""
    env = {**os.environ, "PREFOPT_CACHE": str(tmp_path / "cache")}
    sweep = tmp_path / "multirun" / "main"
    train = [
        sys.executable,
        "-m",
        "prefopt.train",
        "-m",
        "experiment=main",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(train, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    report = [sys.executable, "-m", "prefopt.report", str(sweep)]
    result = subprocess.run(report, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    text = (sweep / "report.md").read_text()
    assert "10 runs: 10 finished" in text
    assert "Kendall's tau-b between constraints and reviews over 5 methods" in text
    for loss in ("dpo", "ipo", "kto", "orpo", "simpo"):
        # the rank table and each task's method table († marks a best checkpoint at the start)
        assert len(re.findall(rf"\| {loss}†? \|", text)) == 3, loss
    for task in ("constraints", "reviews"):
        assert (sweep / task / "figures" / "overfitting.png").stat().st_size > 10_000
        assert (sweep / task / "table.tex").exists()


def test_the_readme_example_loss_registers_and_computes():
    import torch

    from prefopt.losses import PairedLogps, available_losses, build_loss

    section = (ROOT / "README.md").read_text().split("### Adding a loss", 1)[1]
    code = re.search(r"```python\n(.+?)\n```", section, flags=re.S).group(1)
    if "my_loss" not in available_losses():
        exec(compile(code, "README.md", "exec"), {})
    loss = build_loss("my_loss", beta=1.0)
    zeros = torch.zeros(2)
    out = loss(
        PairedLogps(
            torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0]), None, None, zeros, zeros
        )
    )
    expected = torch.nn.functional.softplus(-torch.tensor([1.0, -1.0]))  # -log sigmoid(margin)
    torch.testing.assert_close(out.losses, expected)


def _loss_table_in_readme() -> str:
    section = (ROOT / "README.md").read_text().split("\n## Losses\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def test_the_loss_table_is_the_generators_output():
    """The README's table is `python -m prefopt.losses.table` (regenerate it when this fails)."""
    from prefopt.losses.table import loss_table

    assert _loss_table_in_readme() == loss_table()


def test_the_loss_table_gives_the_config_defaults_users_get(compose_config):
    """Each row's hyperparameters are those a run with `loss=<name>` is composed with."""
    from prefopt.losses import build_loss_from_config
    from prefopt.losses.table import built_in_losses

    rows = {line.split("|")[1].strip(" `"): line for line in _loss_table_in_readme().splitlines()}
    assert set(built_in_losses()) <= set(rows)
    assert "beta=0.5," in rows["dpo"] and "beta=2.0," in rows["ipo"] and "beta=0.3," in rows["kto"]
    for name in ("dpo", "ipo", "kto", "simpo"):
        loss = build_loss_from_config(compose_config([f"loss={name}"]).loss)
        for key, value in loss.hyperparameter_values().items():
            written = str(value).lower() if isinstance(value, bool) else str(value)
            assert f"{key}={written}" in rows[name], (name, key)


def test_the_keys_left_out_of_run_names_are_those_the_readme_lists():
    from prefopt.train import NAME_EXCLUDED_KEYS

    running = (ROOT / "README.md").read_text().split("\n## Running\n", 1)[1].split("\n## ", 1)[0]
    paragraph = running.split("**Where a run goes.**", 1)[1].split("\n\n", 1)[0]
    listed = paragraph.split("do not change the result", 1)[1].split(")", 1)[0]
    named = {key.removesuffix(".*") for key in re.findall(r"`([\w.*]+)`", listed)}
    assert named == set(NAME_EXCLUDED_KEYS)
