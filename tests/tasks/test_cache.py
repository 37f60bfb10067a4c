"""build_cached: build once, atomic publish, a second builder waits for the first."""

import threading
import time

import pytest

from prefopt.tasks.cache import build_cached, config_hash


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
