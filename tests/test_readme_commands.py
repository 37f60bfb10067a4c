"""Every command of the README's "Running" and "Real models and data, GPUs" sections, run.

The commands are read from the README's text (bash blocks; a line's trailing comment is kept as a
claim to check) and run as subprocesses in a fresh launch directory, each section in its own, in
order, so that ``prefopt.evaluate`` and ``prefopt.report`` find the runs the commands before them made:

- **Built-in task** ("Running"): run as written, with ``hydra.searchpath=...`` and
  ``experiment=readme_task`` appended, a test-only experiment (written below) that picks
  ``task=reviews_tiny``, two steps and a small evaluation. ``experiment`` and ``hydra.*`` are left out
  of run names, so each run lands in the directory the README names, which is checked, and the
  ``prefopt.evaluate`` command runs on that directory exactly as written. The first command is then
  run again: a finished run trains nothing.
- **Real models** (``task=none model=hf ...`` and the section on one's own file): run on a CPU with
  stand-ins written by the test: each hub model id is replaced by a tiny GPT-2 saved with
  ``save_pretrained`` (tests/trainer/tiny.py, its word-level tokenizer) or a reward model made from
  it, ``data=hh_rlhf`` reads HH-RLHF dialogues from a local directory (``data.source=`` appended), and
  the own-file command's ``data/...`` files are written where it reads them (one bad row on the line
  the README names). ``experiment=readme_model`` fits lengths to the tiny model's 64 positions and runs
  two steps. The ``<run name>`` placeholder of the ``prefopt.evaluate`` command is the directory the
  run printed (checked to be where the README says).
- **GPU-only** (``trainer.compile=true``, every ``accelerate launch`` for DDP, FSDP and DeepSpeed, and the
  paper recipes on 7B models): composed as ``python -m prefopt.train`` composes them (what ``--cfg
  job`` prints) and checked by ``check_config`` (every trainer and eval key, the loss, the batch split
  over the launch's processes) with ``WORLD_SIZE`` set to its number of processes, local model
  directories checked as a run checks them and hub ids (unreachable here) checked to be hub ids; the
  accelerate config files are checked to exist. Nothing is trained. The paper recipes' Python block
  (a chat template copied into a saved model) runs with tiny stand-ins, and its ``# then:`` command
  is composed and checked on the directory it wrote.

The slow tier here takes about 3.5 minutes of CPU time (two sections, about 14 processes).

Where the README writes ``...`` in a command, the arguments of its block's first command stand in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "trainer"))
from tiny import build_model_dir, write_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RUNNING = "Running"
REAL_MODELS = "Real models and data, GPUs"
TRAIN = ["python", "-m", "prefopt.train"]
EVALUATE = ["python", "-m", "prefopt.evaluate"]
REPORT = ["python", "-m", "prefopt.report"]
ACCELERATE = ["accelerate", "launch"]
RUN_NAME_PLACEHOLDER = "<run name>"
FINISHED = re.compile(r"^finished: (\S+) \|", re.M)

# Test-only experiments on a Hydra search path: cheap settings appended to the README's commands.
CHEAP_EVAL = {
    "eval_every": 0,
    "at_start": False,
    "max_new_tokens": 8,
    "num_prompts": 8,
    "reference_samples_per_prompt": 2,
    "test_policy_samples_per_prompt": 1,
    "test_reference_samples_per_prompt": 2,
    "best_of_n_ns": [1, 2],
}
EXPERIMENTS = {
    "readme_task": {
        "defaults": [{"override /task": "reviews_tiny"}],
        "trainer": {"max_steps": 2, "batch_size": 8},
        "eval": CHEAP_EVAL,
        "device": "cpu",
    },
    "readme_model": {
        "trainer": {"max_steps": 2},
        "data": {"max_prompt_length": 32, "max_length": 64},  # the tiny GPT-2 has 64 positions
        "eval": CHEAP_EVAL,
        "device": "cpu",
    },
}
LM, REWARD_MODEL, HH_DIR = "lm", "reward_model", "hh_rlhf"
HUB_STAND_INS = {  # hub id in the README -> the tiny stand-in (a directory under the assets)
    "Qwen/Qwen2.5-0.5B": LM,
    "Qwen/Qwen2.5-0.5B-Instruct": LM,
    "OpenAssistant/reward-model-deberta-v3-large-v2": REWARD_MODEL,
}


@dataclass(frozen=True)
class Command:
    """One README command: its text with continuation lines joined, and its trailing comment."""

    text: str
    comment: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def claimed_dir(self) -> str | None:
        """The run directory its comment names (``# ...: outputs/...``), if any."""
        found = re.search(r"\b((?:outputs|multirun)/\S+)", self.comment)
        return found.group(1) if found else None

    def __str__(self) -> str:
        return self.text


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def bash_commands(title: str) -> list[list[Command]]:
    """The commands of each bash block of a README section (comment lines left out)."""
    blocks = []
    for block in re.findall(r"```bash\n(.+?)\n```", section(title), flags=re.S):
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            code, _, comment = line.partition("  #")
            code = " ".join(code.split())
            if code and not code.startswith("#"):
                commands.append(Command(code, comment.strip()))
        blocks.append(commands)
    return blocks


def with_ellipsis_expanded(commands: list[Command]) -> list[Command]:
    """``...`` replaced by the arguments of the block's first command."""
    first = commands[0].argv
    expanded = []
    for command in commands:
        argv = command.argv
        if "..." in argv:
            assert "..." not in first, f"the block's first command has '...': {commands[0]}"
            at = argv.index("...")
            argv = [*argv[:at], *first[len(TRAIN) :], *argv[at + 1 :]]
            command = Command(shlex.join(argv), command.comment)
        expanded.append(command)
    return expanded


def is_gpu_only(argv: list[str]) -> bool:
    return argv[:2] == ACCELERATE or "trainer.compile=true" in argv


def real_model_commands() -> list[Command]:
    return [c for block in bash_commands(REAL_MODELS) for c in with_ellipsis_expanded(block)]


# ---------------------------------------------------------------------------------------- fast


def test_no_readme_command_needs_hydra_run_dir():
    for block in re.findall(r"```(?:bash|python)\n(.+?)\n```", README, flags=re.S):
        assert "hydra.run.dir" not in block and "hydra.sweep.dir" not in block, block


def test_the_sections_hold_the_commands_this_test_runs():
    running = [c.argv[:3] for b in bash_commands(RUNNING) for c in b]
    assert running.count(TRAIN) >= 3 and EVALUATE in running and REPORT in running
    evaluations = [c for b in bash_commands(RUNNING) for c in b if c.argv[:3] == EVALUATE]
    assert any("run_dir=outputs/" in c.text for c in evaluations)
    for command in real_model_commands():
        argv = command.argv
        assert argv[:3] in (TRAIN, EVALUATE) or argv[:2] == ACCELERATE, command
        for arg in argv:
            if arg.startswith(("model.name_or_path=", "judge.name_or_path=")):
                assert arg.split("=", 1)[1] in HUB_STAND_INS, f"no tiny stand-in for {arg}"
    assert any(not is_gpu_only(c.argv) and c.argv[:3] == TRAIN for c in real_model_commands())


# ---------------------------------------------------------------------------------------- slow


def run(argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """A README command as a subprocess (``python`` is this interpreter)."""
    if argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def assert_ran(result: subprocess.CompletedProcess, command: Command) -> None:
    assert result.returncode == 0, f"{command}\n{output_of(result)[-4000:]}"


def finished_dirs(result: subprocess.CompletedProcess) -> list[Path]:
    """The run directories a command printed as finished, each checked in its summary.json."""
    dirs = [Path(d) for d in FINISHED.findall(output_of(result))]
    for run_dir in dirs:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    return dirs


@pytest.fixture(scope="module")
def searchpath(tmp_path_factory) -> str:
    """``hydra.searchpath=[...]`` of a conf directory holding the test-only experiments."""
    conf = tmp_path_factory.mktemp("readme_conf")
    (conf / "experiment").mkdir()
    for name, body in EXPERIMENTS.items():
        text = "# @package _global_\n" + yaml.safe_dump(body, sort_keys=False)
        (conf / "experiment" / f"{name}.yaml").write_text(text)
    return f"hydra.searchpath=[file://{conf}]"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    cache = os.environ.get("PREFOPT_CACHE") or str(tmp_path_factory.mktemp("cache"))
    return {**os.environ, "PREFOPT_CACHE": cache, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def distinct_pairs(path: Path, n: int, seed: int, tag: str) -> list[dict]:
    """write_pairs' rows, each prompt made unique (so no held-out record repeats a training one)."""
    rows = [json.loads(line) for line in write_pairs(path, n, seed).read_text().splitlines()]
    path.unlink()
    return [
        {"prompt": f"{r['prompt']} {tag} {i}", "chosen": r["chosen"], "rejected": r["rejected"]}
        for i, r in enumerate(rows)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """The tiny stand-ins: a causal LM, a reward model from it, HH-RLHF train and test files."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("assets")
    build_model_dir(root / LM)
    reward_model = AutoModelForSequenceClassification.from_pretrained(root / LM, num_labels=1)
    reward_model.save_pretrained(root / REWARD_MODEL)
    AutoTokenizer.from_pretrained(root / LM).save_pretrained(root / REWARD_MODEL)
    for split, n, seed in (("train", 128, 0), ("test", 16, 1)):
        rows = distinct_pairs(root / f"{split}.tmp", n, seed, split)
        dialogues = [
            {
                side: f"\n\nHuman: {r['prompt']}\n\nAssistant: {r[side]}"
                for side in ("chosen", "rejected")
            }
            for r in rows
        ]
        write_jsonl(root / HH_DIR / f"{split}.jsonl", dialogues)
    return root


def write_own_files(command: Command, launch: Path) -> tuple[str, int]:
    """The data files the own-file command names, in the launch directory; one row of the
    training file bad on the line the README names. Returns the README's logged line and line."""
    logged = re.search(
        r"`(data\[train\]: first dropped: empty_string at (\S+) line (\d+))`", README
    )
    bad_line = int(logged.group(3))
    arguments = dict(a.split("=", 1) for a in command.argv[len(TRAIN) :])
    files = {
        arguments["data.source"]: 64,
        arguments["data.splits.validation"]: 16,
        arguments["data.splits.test"]: 16,
    }
    assert Path(arguments["data.source"]).name == logged.group(2)
    for seed, (name, n) in enumerate(files.items()):
        rows = distinct_pairs(launch / "pairs.tmp", n, seed, Path(name).stem)
        path = launch / name
        if name == arguments["data.source"]:
            rows[bad_line - 1]["chosen"] = ""
        if name.endswith(".parquet"):
            import pandas as pd

            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_parquet(path)
        else:
            write_jsonl(path, rows)
    return logged.group(1), bad_line


def with_stand_ins(argv: list[str], assets: Path) -> list[str]:
    """Hub ids replaced by the tiny stand-ins; a hub data set by local files."""
    replaced = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if value in HUB_STAND_INS:
            arg = f"{key}={assets / HUB_STAND_INS[value]}"
        replaced.append(arg)
    if "data=hh_rlhf" in argv:
        replaced.append(f"data.source={assets / HH_DIR}")
    return replaced


@pytest.mark.slow
def test_running_commands(tmp_path, env, searchpath):
    """The "Running" section's commands in order, in one launch directory, then the first again."""
    commands = [c for block in bash_commands(RUNNING) for c in block]
    cheap = [searchpath, "experiment=readme_task"]
    for command in commands:
        argv = command.argv
        assert not any(a.startswith("experiment=") for a in argv), command
        result = run(argv + cheap if argv[:3] == TRAIN else argv, tmp_path, env)
        assert_ran(result, command)
        if argv[:3] == TRAIN:
            dirs = finished_dirs(result)
            assert dirs, f"{command} printed no finished run"
            if command.claimed_dir:
                assert dirs == [tmp_path / command.claimed_dir], command
        elif argv[:3] == EVALUATE and "--help" in argv:
            assert "run_dir" in result.stdout and "checkpoint" in result.stdout
        elif argv[:3] == EVALUATE:
            row = json.loads(result.stdout)  # the row alone on stdout
            assert {"win_rate", "reward_accuracy"} <= set(row), command
        else:
            sweep = tmp_path / argv[-1]
            report = (sweep / "report.md").read_text()
            for loss in ("dpo", "ipo", "kto"):
                assert f"| {loss} |" in report
    again = run(commands[0].argv + cheap, tmp_path, env)
    assert_ran(again, commands[0])
    assert "run already finished" in output_of(again)  # a rerun of a finished run trains nothing


@pytest.mark.slow
def test_real_model_commands(tmp_path, env, searchpath, assets):
    """The CPU-runnable commands of "Real models and data, GPUs" and its own-file section."""
    cheap = [searchpath, "experiment=readme_model"]
    last_run: Path | None = None
    for command in real_model_commands():
        argv = command.argv
        if is_gpu_only(argv):
            continue  # test_gpu_only_commands_compose
        if argv[:3] == TRAIN:
            logged = None
            if any(a.startswith("data.source=") for a in argv):
                logged, _ = write_own_files(command, tmp_path)
            result = run(with_stand_ins(argv, assets) + cheap, tmp_path, env)
            assert_ran(result, command)
            (last_run,) = finished_dirs(result)
            if logged:
                assert logged in output_of(result)  # the bad row, at the line the README names
        else:
            assert last_run is not None and RUN_NAME_PLACEHOLDER in command.text, command
            text = command.text.replace(RUN_NAME_PLACEHOLDER, last_run.name)
            claimed = re.search(r"run_dir=(\S+)", text).group(1)
            assert tmp_path / claimed == last_run, (command, last_run)
            result = run(shlex.split(text), tmp_path, env)
            assert_ran(result, command)
            assert {"win_rate", "reward_accuracy"} <= set(json.loads(result.stdout))


def accelerate_processes(argv: list[str]) -> int:
    """Processes of an ``accelerate launch``: --num_processes, else its config file's."""
    if "--num_processes" in argv:
        return int(argv[argv.index("--num_processes") + 1])
    if "--config_file" in argv:
        config = ROOT / argv[argv.index("--config_file") + 1]
        assert config.exists(), config
        return int(yaml.safe_load(config.read_text())["num_processes"])
    return 1


def checked_model_sources(cfg) -> dict[str, str]:
    """The models a config names, each local directory checked as a run checks it; returns the
    hub ids (unreachable from a test) by key, each checked to be one (``owner/name``)."""
    from prefopt.models.loading import check_model_source
    from prefopt.trainer.setup import model_sources

    hub_ids = {}
    for key, source in model_sources(cfg).items():
        if Path(os.path.expanduser(source)).exists():
            check_model_source(source, key)
        else:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", source), f"{key}={source}: not a hub id"
            hub_ids[key] = source
    return hub_ids


@pytest.mark.parametrize(
    "command", [c for c in real_model_commands() if is_gpu_only(c.argv)], ids=str
)
def test_gpu_only_commands_compose(command, compose_config, monkeypatch):
    """A GPU-only command composes and passes the config checks on its number of processes."""
    from prefopt.trainer.setup import check_config

    argv = command.argv
    processes = 1
    if argv[:2] == ACCELERATE:
        processes = accelerate_processes(argv)
        assert argv[argv.index("-m") + 1] == "prefopt.train", command
        argv = TRAIN + argv[argv.index("-m") + 2 :]
    monkeypatch.setenv("WORLD_SIZE", str(processes))
    cfg = compose_config(argv[len(TRAIN) :])
    check_config(cfg)
    assert cfg.task is None and checked_model_sources(cfg)  # a real model, named by its hub id


def test_paper_recipe_chat_template_copy_and_its_run_compose(
    assets, tmp_path, compose_config, monkeypatch
):
    """The paper recipes' Python block, with tiny stand-ins for its hub models (the template's
    source given a chat template), writes a model directory that its ``# then:`` command trains from."""
    from transformers import AutoTokenizer

    from prefopt.trainer.setup import check_config

    recipes = section(REAL_MODELS).split("### Paper recipes", 1)[1]
    code = re.search(r"```python\n(.+?)\n```", recipes, flags=re.S).group(1)
    with_template = AutoTokenizer.from_pretrained(assets / LM)
    with_template.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    with_template.save_pretrained(tmp_path / "chat")
    stand_ins = {
        "mistralai/Mistral-7B-v0.1": assets / LM,
        "alignment-handbook/zephyr-7b-sft-full": tmp_path / "chat",
    }
    for hub_id, directory in stand_ins.items():
        assert f'"{hub_id}"' in code
        code = code.replace(f'"{hub_id}"', repr(str(directory)))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    then = re.search(r"# then: \.\.\. (.+)", code).group(1)
    cfg = compose_config(shlex.split(then))
    check_config(cfg)
    assert "model.name_or_path" not in checked_model_sources(cfg)  # the directory just written
    saved = AutoTokenizer.from_pretrained(tmp_path / cfg.model.name_or_path)
    assert saved.chat_template == with_template.chat_template


def test_own_file_run_without_a_judge_is_refused_by_the_config_check(compose_config):
    """The own-file section says a run without a task must name a judge: the config check says so."""
    from prefopt.errors import ConfigError
    from prefopt.trainer.setup import check_config

    (command,) = [c for c in real_model_commands() if "data=jsonl" in c.argv]
    overrides = [a for a in command.argv[len(TRAIN) :] if not a.startswith("judge")]
    with pytest.raises(ConfigError, match="judge"):
        check_config(compose_config(overrides))
