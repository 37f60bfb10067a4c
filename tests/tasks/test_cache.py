"""build_cached: build once, atomic publish, a second builder waits for the first; a corrupt entry
is named with the command that deletes it."""

import re
import shutil
import threading
import time

import pytest

from prefopt.errors import UserError
from prefopt.tasks.cache import build_cached, config_hash
from prefopt.tasks.reviews import ReviewsTask
from prefopt.tasks.synthetic import settings_hash


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_failed_build_leaves_nothing(tmp_path):
    root = tmp_path / "tasks" / "x-1"

    def broken(tmp):
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        build_cached(root, broken)
    assert not root.exists()
    assert [p.name for p in root.parent.iterdir()] == ["x-1.lock"]


def test_concurrent_builders_build_once(tmp_path):
    root = tmp_path / "tasks" / "x-2"
    calls = []

    def slow(tmp):
        calls.append(1)
        time.sleep(0.3)
        (tmp / "done.txt").write_text("ok")

    results = []
    threads = [threading.Thread(target=lambda: results.append(build_cached(root, slow)))]
    threads.append(threading.Thread(target=lambda: results.append(build_cached(root, slow))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(results) == [False, True]
    assert (root / "done.txt").read_text() == "ok"


def cache_copy(tiny_artifacts, tmp_path):
    """A copy of the tiny task's whole cache (the task's directory and its pi_ref stage)."""
    return shutil.copytree(tiny_artifacts.root.parents[1], tmp_path / "cache")


@pytest.mark.parametrize(
    "damage",
    ["info.json", "pairs/train.jsonl", "prompts/test.jsonl", "model/model.safetensors"],
)
def test_a_corrupt_task_cache_names_the_entry_to_delete(
    tiny_artifacts, tiny_task, tmp_path, damage
):
    cache = cache_copy(tiny_artifacts, tmp_path)
    root = cache / "tasks" / tiny_artifacts.root.name
    broken = root / damage
    broken.write_bytes(broken.read_bytes()[:-7])  # cut off the end, as a full disk would
    with pytest.raises(UserError, match=re.escape(str(root))) as error:
        tiny_task.prepare(cache, progress=False)
    message = str(error.value)
    assert damage.split("/")[-1] in message and f"delete it (rm -r {root})" in message


def test_a_corrupt_pi_ref_stage_names_the_stage_to_delete(tiny_artifacts, tiny_task, tmp_path):
    cache = cache_copy(tiny_artifacts, tmp_path)
    shutil.rmtree(cache / "tasks" / tiny_artifacts.root.name)  # rebuilt from the stage
    fields = ReviewsTask.base_fields + ReviewsTask.sft_fields  # pi_ref is the SFT stage
    stage = cache / "tasks" / "stages" / f"reviews-sft-{settings_hash(tiny_task, fields)}"
    (stage / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match=re.escape(f"delete it (rm -r {stage})")):
        tiny_task.prepare(cache, progress=False)
