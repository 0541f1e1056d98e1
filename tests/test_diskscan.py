"""The worker's thread runner and the fork/collect protocol, without disks
(tests/test_scan_images.py and the lab tests read real PVs)."""

import os
import threading
import time

import pytest

from vgdrift.disk import diskscan, worker


def test_run_concurrently_returns_what_finished_in_time():
    gate = threading.Event()
    fns = [lambda: 1, lambda: gate.wait(30) and 2, lambda: 3]
    t0 = time.monotonic()
    got = diskscan.run_concurrently(fns, timeout=0.3)
    assert got == {0: 1, 2: 3}
    assert time.monotonic() - t0 < 5
    gate.set()


def test_run_concurrently_runs_in_parallel_with_few_workers():
    fns = [lambda: time.sleep(0.2) or i for i in range(8)]
    t0 = time.monotonic()
    got = diskscan.run_concurrently(fns, timeout=10, workers=8)
    assert sorted(got) == list(range(8)) and time.monotonic() - t0 < 1.5


def test_run_concurrently_reraises_bugs():
    def boom():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        diskscan.run_concurrently([boom], timeout=5)


def test_forked_worker_with_nothing_to_read_is_done_and_reaped():
    plan = diskscan.Plan(vgs=(), patterns=("/nonexistent/*",), timeout=1.0)
    running = worker.start(plan, "fork")
    out = worker.finish(running, time.monotonic() + 10)
    assert out.complete and out.error is None and out.heads == {}
    assert worker.exited(running)


def test_collect_stops_at_the_deadline_when_the_worker_says_nothing():
    r, w = os.pipe()
    try:
        t0 = time.monotonic()
        out = worker.collect(r, time.monotonic() + 0.3, worker.Outcome())
        assert not out.complete and out.error is None and time.monotonic() - t0 < 2
    finally:
        os.close(r)
        os.close(w)


def test_collect_reports_a_worker_that_died():
    r, w = os.pipe()
    os.close(w)
    out = worker.collect(r, time.monotonic() + 5, worker.Outcome())
    os.close(r)
    assert out.error == "worker exited without finishing"
