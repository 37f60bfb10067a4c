"""Two processes cannot train one run directory at once; a dead holder leaves no stale lock."""

import multiprocessing
import time

import pytest

from prefopt.results.lock import RunLockedError, run_lock


def _hold(run_dir, ready, release):
    with run_lock(run_dir):
        ready.set()
        release.wait(30)


def test_second_holder_gets_a_clear_error(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RunLockedError, match="another process"), run_lock(tmp_path):
            pass
    finally:
        release.set()
        holder.join(30)


def test_lock_of_a_killed_process_is_released(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    assert ready.wait(60)
    holder.kill()
    holder.join(30)
    time.sleep(0.1)
    with run_lock(tmp_path):  # acquired: the kernel dropped the dead process's lock
        pass
