"""The comparison protocol's driver (experiments/protocol.py) on spaces, plans and a fabricated
run store; nothing is trained."""

import dataclasses
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "tests" / "analysis"))

import protocol  # noqa: E402
import search_space  # noqa: E402
import study_data  # noqa: E402
from fabricate import fabricate_sweep  # noqa: E402

from prefopt.losses import available_losses  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"

HEADLINE = {"dpo", "ipo", "kto", "orpo", "simpo", "sft"}


@pytest.mark.parametrize("loss", available_losses())
def test_every_registered_loss_has_a_space_with_its_trial_count(loss):
    space = search_space.load_space(loss)
    assert space.headline == (loss in HEADLINE)
    assert space.trials == (16 if loss in HEADLINE else 8)
    assert space.confirm_seeds == (10 if loss in HEADLINE else 5)
    assert "trainer.lr" in space.space


def test_old_optimum_corners_lie_strictly_inside():
    corners = {"dpo": 0.3, "ipo": 2.0, "kto": 0.3, "orpo": 0.5}
    for loss, beta in corners.items():
        space = search_space.load_space(loss)
        verdicts = search_space.inside_verdicts(space, {"loss.beta": beta, "trainer.lr": 1e-3})
        assert set(verdicts.values()) == {"inside"}, (loss, verdicts)


def test_trials_are_stored_and_read_back_not_redrawn(tmp_path, monkeypatch):
    path = tmp_path / "trials.json"
    spaces = [search_space.load_space("dpo"), search_space.load_space("ld_dpo")]
    first = search_space.stored_trials(path, spaces, seed=3)
    assert path.is_file() and len(first["dpo"]) == 16 and len(first["ld_dpo"]) == 8

    def redraw(*_):
        raise AssertionError("a stored loss was drawn again")

    monkeypatch.setattr(search_space, "draw_trials", redraw)
    assert search_space.stored_trials(path, spaces, seed=3) == first
    with pytest.raises(ValueError, match="fixed once drawn"):
        search_space.stored_trials(path, spaces, seed=4)


def test_draws_are_reproducible_and_differ_by_seed():
    space = search_space.load_space("dpo")
    assert search_space.draw_trials(space, 0) == search_space.draw_trials(space, 0)
    assert search_space.draw_trials(space, 0) != search_space.draw_trials(space, 1)


@pytest.mark.parametrize("loss", ["dpo", "discopop", "sft"])
def test_draws_lie_inside_the_space_uniformly_in_log_scale(loss):
    space = dataclasses.replace(search_space.load_space(loss), trials=4000)
    draws = search_space.draw_trials(space, 0)
    for key, (low, high) in space.space.items():
        where = [(math.log(d[key]) - math.log(low)) / math.log(high / low) for d in draws]
        assert min(where) > 0 and max(where) < 1
        # log-uniform: the mean position is 1/2 (a linear-uniform draw would give about 0.8)
        assert abs(sum(where) / len(where) - 0.5) < 0.02
        assert abs(sum(w < 0.5 for w in where) / len(where) - 0.5) < 0.03


def test_confirmation_seeds_never_include_the_selection_seed():
    for n_seeds in range(1, 13):
        seeds = protocol.confirmation_seeds(n_seeds)
        assert len(set(seeds)) == n_seeds
        assert protocol.SELECTION_SEED not in seeds


def test_a_best_at_a_corner_is_flagged_with_the_axis_to_widen():
    space = search_space.load_space("dpo")
    (low_beta, _), (_, high_lr) = space.space["loss.beta"], space.space["trainer.lr"]
    verdicts = search_space.inside_verdicts(space, {"loss.beta": low_beta, "trainer.lr": high_lr})
    assert verdicts["loss.beta"].startswith("widen low")
    assert verdicts["trainer.lr"].startswith("widen high")
    ld = search_space.load_space("ld_dpo")
    at_limit = search_space.inside_verdicts(
        ld, {"loss.beta": 0.3, "loss.ld_alpha": 1.0, "trainer.lr": 1e-3}
    )
    assert at_limit["loss.ld_alpha"].startswith("at hard limit (high")
    assert at_limit["loss.beta"] == at_limit["trainer.lr"] == "inside"


def _calls(monkeypatch, tmp_path):
    monkeypatch.setattr(protocol, "MULTIRUN", tmp_path / "multirun")
    launched = []
    monkeypatch.setattr(protocol, "train", lambda *overrides: launched.append(overrides))
    return launched


def test_dry_run_launches_nothing_and_prints_the_plan(monkeypatch, tmp_path, capsys):
    launched = _calls(monkeypatch, tmp_path)
    for phase in ("pilot", "trials"):
        protocol.main([phase, "--study", "s", "--losses", "dpo", "ld_dpo", "--dry-run", "seed=3"])
    assert launched == []
    out = capsys.readouterr().out
    # 3 x 3 + 3 x 4 x 3
    assert "pilot: 45 runs (0 finished, 45 to run) x 300 s per run (stated estimate" in out
    assert "trials: 24 runs (0 finished, 24 to run) x" in out  # 16 + 8
    assert "dry run: nothing launched" in out


def test_trials_launch_one_multirun_per_loss_at_equal_steps_without_test(monkeypatch, tmp_path):
    launched = _calls(monkeypatch, tmp_path)
    protocol.main(["trials", "--study", "s", "--losses", "dpo", "kto", "--max-steps", "7"])
    assert len(launched) == 2
    for overrides in launched:
        assert "trainer.max_steps=7" in overrides and "launcher=joblib" in overrides
        assert f"trainer.epochs={protocol.EPOCHS}" in overrides  # max_steps binds for every method
        assert f"eval.test_at={protocol.TUNING_TEST_AT}" in overrides
        assert f"seed={protocol.SELECTION_SEED}" in overrides
    trials = [o for o in launched[0] if o.startswith("+trial=")][0].split("=")[1].split(",")
    assert len(trials) == 16
    conf = tmp_path / "multirun" / "s" / "trial_conf" / "trial" / f"{trials[3]}.yaml"
    stored = protocol.yaml.safe_load(conf.read_text())
    drawn = json.loads((tmp_path / "multirun" / "s" / "trials.json").read_text())["dpo"]
    assert trials[3] == "dpo_03"
    assert drawn["trials"][3] == {
        "loss.beta": stored["loss"]["beta"],
        "trainer.lr": stored["trainer"]["lr"],
    }


def test_selection_and_confirmation_commands_on_a_fabricated_study(monkeypatch, tmp_path):
    launched = _calls(monkeypatch, tmp_path)
    fabricate_sweep(tmp_path / "multirun" / "s" / "trials", seeds=(0,), unfinished=False)
    selected = protocol.select_settings(tmp_path / "multirun" / "s" / "trials", ["dpo", "ipo"])
    assert selected["dpo"] == {"loss.beta": 0.1, "trainer.lr": 1e-4}  # the planted best
    protocol.main(["confirm", "--study", "s", "--losses", "dpo", "ipo"])
    seeds = [o for o in launched[0] if o.startswith("seed=")][0]
    assert seeds == "seed=" + ",".join(str(s) for s in range(1, 11))
    assert "loss.beta=0.1" in launched[0] and "trainer.lr=0.0001" in launched[0]
    assert not any(o.startswith("eval.test_at") for o in launched[0])  # test is scored


def test_export_then_report_from_the_file_alone(tmp_path):
    from prefopt.analysis import method_table
    from prefopt.results import load_sweep

    root = tmp_path / "multirun" / "s"
    fabricate_sweep(root / "trials", seeds=(0,), unfinished=False)
    fabricate_sweep(root / "confirm", betas=(0.1,), lrs=(1e-4,), seeds=(1, 2, 3), unfinished=False)
    original = method_table(load_sweep(root / "confirm"), n_boot=200).data.set_index("method")
    data = study_data.export_study(root, tmp_path / "results" / "s" / "runs.parquet")
    assert data.stat().st_size < 5_000_000
    shutil.rmtree(root)
    rows, prompts = study_data.read_study(data)
    assert set(rows["phase"]) == {"trials", "confirm"} and not prompts.empty
    with tempfile.TemporaryDirectory() as scratch:
        rebuilt_frame = study_data._with_samples(rows, prompts, Path(scratch))
        confirm = rebuilt_frame[rebuilt_frame["phase"] == "confirm"]
        confirm.attrs = rebuilt_frame.attrs
        rebuilt = method_table(confirm, n_boot=200).data.set_index("method")
    for column in ("n_seeds", "win_rate", "setting"):
        assert rebuilt[column].to_dict() == original[column].to_dict()
    report = study_data.report_study(data, tmp_path / "results" / "s")
    text = report.read_text()
    assert "Confirmation, headline losses" in text and "matched KL" in text
    assert (tmp_path / "results" / "s" / "figures" / "expected_validation.png").is_file()
    assert (tmp_path / "results" / "s" / "table_headline.tex").is_file()


def test_agreement_of_two_tasks_studies_from_their_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for index, task in enumerate(("reviews", "constraints")):
        root = tmp_path / "multirun" / task
        fabricate_sweep(
            root / "confirm",
            betas=(0.1,),
            lrs=(1e-4,),
            seeds=(1, 2, 3),
            unfinished=False,
            task=task,
            rng_seed=index,
        )
        protocol.main(["export", "--study", task])
    with pytest.raises(SystemExit):
        protocol.main(["agreement", "--study", "reviews"])  # no other task named
    assert "needs --with" in capsys.readouterr().err
    protocol.main(["agreement", "--study", "reviews", "--with", "constraints"])
    text = (tmp_path / "results" / "reviews" / "agreement.md").read_text()
    assert "| dpo | " in text and "(3 seeds" not in text and "; 3 seeds)" in text
    assert "Kendall's tau-b between constraints and reviews over 3 methods" in text
    assert "95% interval over seeds [" in text
    with pytest.raises(ValueError, match="must each hold another task"):
        study_data.agreement_study(
            [tmp_path / "results" / "reviews" / "runs.parquet"] * 2, tmp_path / "out"
        )


def test_a_study_file_restores_its_runs_and_a_second_export_keeps_them(tmp_path):
    from prefopt.results import load_sweep

    root = tmp_path / "multirun" / "s"
    fabricate_sweep(root / "trials", seeds=(0,), unfinished=False)
    data = study_data.export_study(root, tmp_path / "results" / "s" / "runs.parquet")
    first = load_sweep(root).drop(columns="run_dir")
    shutil.rmtree(root)
    written = study_data.restore_study(data, root)
    assert written == first["run_id"].nunique()
    restored = load_sweep(root).drop(columns="run_dir")
    # the same rows, values and dtypes; metrics.jsonl is rebuilt with sorted keys, so the metric
    # columns may come in another order
    pd.testing.assert_frame_equal(restored, first, check_like=True)
    marks = list(root.rglob(study_data.RESTORED_MARK))
    assert len(marks) == written and str(data) in marks[0].read_text()
    assert study_data.restore_study(data, root) == 0  # already there: nothing written

    fabricate_sweep(root / "confirm", betas=(0.1,), lrs=(1e-4,), seeds=(1, 2), unfinished=False)
    shutil.rmtree(root / "trials")  # a new session's sweep: only its own runs
    study_data.export_study(root, data)  # restores the file's runs first
    rows, prompts = study_data.read_study(data)
    assert set(rows["phase"]) == {"trials", "confirm"}
    assert set(rows.loc[rows["phase"] == "trials", "run_id"]) == set(first["run_id"])
    assert not prompts.empty


def test_a_restore_onto_another_run_in_the_same_directory_is_refused(tmp_path):
    root = tmp_path / "multirun" / "s"
    fabricate_sweep(root / "trials", seeds=(0,), unfinished=False)
    for run_dir in [p.parent for p in root.rglob("summary.json")]:
        (run_dir / "run_identity.json").write_text('{"config": {"seed": 0}}')
    data = study_data.export_study(root, tmp_path / "runs.parquet")
    victim = next(p.parent for p in root.rglob("run_identity.json"))
    victim.joinpath("run_identity.json").write_text('{"config": {"seed": 1}}')
    with pytest.raises(ValueError, match="holds another run") as raised:
        study_data.restore_study(data, root)
    assert str(victim) in str(raised.value)


def test_a_restored_real_run_is_found_finished_and_not_trained_again(tmp_path, tiny_task_config):
    from prefopt.trainer.run import run_training

    cfg = tiny_task_config(tmp_path / "cache")
    root = tmp_path / "multirun" / "s"
    run_dir = root / "confirm" / "dpo" / "seed=0"
    first = run_training(cfg, run_dir)
    metrics = (run_dir / "metrics.jsonl").read_text()
    data = study_data.export_study(root, tmp_path / "runs.parquet")
    shutil.rmtree(root)
    assert study_data.restore_study(data, root) == 1
    assert not (run_dir / "checkpoints").exists()  # restored without checkpoints or models
    restored = (run_dir / "metrics.jsonl").read_text()
    # rebuilt from the file's rows: the same rows and values (an integral float may read 2.0)
    assert [json.loads(line) for line in restored.splitlines()] == [
        json.loads(line) for line in metrics.splitlines()
    ]
    again = run_training(cfg, run_dir)
    assert again["status"] == "finished" and again["final"] == first["final"]
    assert (run_dir / "metrics.jsonl").read_text() == restored  # not trained again


@pytest.fixture(scope="module")
def tiny_task_root(tmp_path_factory):
    """A built reviews_tiny task (its directory under a cache of its own)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prefopt.tasks import build_task

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["task=reviews_tiny"])
    return build_task(cfg.task).prepare(tmp_path_factory.mktemp("cache"), progress=False).root


def test_export_carries_the_build_and_trials_and_a_new_session_gets_them_back(
    tiny_task_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    launched = _calls(monkeypatch, tmp_path)
    protocol.main(["trials", "--study", "s", "--losses", "dpo"])  # draws and stores the trials
    cache_tasks = protocol.study_cache("s") / "tasks"
    shutil.copytree(tiny_task_root, cache_tasks / tiny_task_root.name)
    (cache_tasks / "stages").mkdir()  # shared stages stay behind
    fabricate_sweep(protocol.study_dir("s") / "trials", seeds=(0,), unfinished=False)
    protocol.main(["export", "--study", "s"])
    results = tmp_path / "results" / "s"
    assert (results / "trials.json").read_text() == (
        protocol.study_dir("s") / "trials.json"
    ).read_text()
    assert [p.name for p in (results / "task_builds").iterdir()] == [
        f"{tiny_task_root.name}.tar.gz"
    ]

    shutil.rmtree(tmp_path / "multirun")  # another session: nothing local
    launched.clear()
    protocol.main(["trials", "--study", "s", "--losses", "dpo"])
    assert "restored 12 runs" in capsys.readouterr().out
    rebuilt = cache_tasks / tiny_task_root.name
    assert (rebuilt / "model" / "model.safetensors").read_bytes() == (
        tiny_task_root / "model" / "model.safetensors"
    ).read_bytes()
    assert launched and any(o == f"cache_dir={protocol.study_cache('s')}" for o in launched[0])

    (results / "trials.json").write_text("{}")  # another draw committed: refused
    with pytest.raises(ValueError, match="two trial draws"):
        protocol.main(["trials", "--study", "s", "--losses", "dpo"])


def test_only_finished_runs_are_restored(tmp_path):
    root = tmp_path / "multirun" / "s"
    planted = fabricate_sweep(
        root / "trials", seeds=(0, 1)
    )  # a failed, a running, an incomplete run
    data = study_data.export_study(root, tmp_path / "runs.parquet")
    rows, _ = study_data.read_study(data)
    assert f"trials/{planted.failed_run}" in set(rows["run_id"])  # its rows are kept
    shutil.rmtree(root)
    study_data.restore_study(data, root)
    assert not (root / "trials" / planted.failed_run).exists()  # it runs again
    assert not (root / "trials" / planted.running_run).exists()
    assert (root / "trials" / planted.run_ids[0] / "summary.json").is_file()


def test_restore_rebuilds_nested_and_missing_values_and_a_run_that_logged_nothing(tmp_path):
    from prefopt.results import load_sweep

    root = tmp_path / "multirun" / "s"
    fabricate_sweep(root / "trials", losses=("dpo",), seeds=(0,), unfinished=False)
    runs = sorted(p.parent for p in root.rglob("metrics.jsonl"))
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    rows[0].update(quantiles=[0.1, 0.5, 0.9], clipped=True)  # a list and a bool in one row only
    rows[1].update(note=None)  # logged as null
    (runs[0] / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (runs[1] / "metrics.jsonl").write_text("")  # finished, nothing logged
    for path in runs[1].joinpath("samples").glob("*"):
        path.unlink()
    for path in root.rglob("*_test.jsonl"):
        path.unlink()  # no run scored test: the file holds no prompt records
    first = load_sweep(root).drop(columns="run_dir")
    data = study_data.export_study(root, tmp_path / "runs.parquet")
    _, prompts = study_data.read_study(data)
    assert prompts.empty
    shutil.rmtree(root)
    assert study_data.restore_study(data, root) == len(runs)
    rebuilt = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert rebuilt[0]["quantiles"] == [0.1, 0.5, 0.9]
    assert rebuilt[0]["clipped"] == 1  # load_sweep already reads a bool beside gaps as 1.0
    assert "quantiles" not in rebuilt[1] and "note" not in rebuilt[1]
    assert (runs[1] / "metrics.jsonl").read_text() == ""
    restored = load_sweep(root).drop(columns="run_dir")
    assert first["note"].isna().all() and "note" not in restored  # a metric never given a value
    pd.testing.assert_frame_equal(
        restored.drop(columns=["quantiles", "clipped"]),
        first.drop(columns=["quantiles", "clipped", "note"]),
        check_like=True,
        check_dtype=False,
    )
    assert study_data.export_study(root, data)  # a second export restores nothing, keeps all
