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
    # The barrier lets no call return before all 8 are running at once.
    barrier = threading.Barrier(8, timeout=20)
    fns = [lambda i=i: barrier.wait() * 0 + i for i in range(8)]
    got = diskscan.run_concurrently(fns, timeout=30, workers=8)
    assert got == {i: i for i in range(8)}


def test_run_concurrently_reraises_bugs():
    def boom():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        diskscan.run_concurrently([boom], timeout=5)


def test_run_concurrently_hands_errors_over_and_keeps_the_other_results():
    def boom():
        raise ValueError("bug")
    failed = {}
    got = diskscan.run_concurrently([lambda: 1, boom, lambda: 3], timeout=30, on_error=failed.__setitem__)
    assert got == {0: 1, 2: 3}
    assert list(failed) == [1] and isinstance(failed[1], ValueError)


def test_a_read_that_raises_is_that_device_internal_error_only(monkeypatch):
    """A bug while reading one device: that device's head says internal,
    the others are read, and the scan finishes (no worker-wide failure)."""
    real = diskscan.read_head

    def flaky(path, *args):
        if path == "/dev/bad":
            raise ValueError("boom")
        return real(path, *args)
    monkeypatch.setattr(diskscan, "read_head", flaky)
    emitted = []
    scan = diskscan.DiskScan(diskscan.Plan((), (), 30.0), lambda kind, obs: emitted.append((kind, obs)))
    scan.read_heads([("/dev/bad", (9, 1), 4096, None), ("/nonexistent/x", (9, 2), 4096, None)])
    bad, other = scan.heads[(9, 1)], scan.heads[(9, 2)]
    assert bad.reason == "internal" and "ValueError: boom" in bad.error and "/dev/bad" in bad.error
    assert other.reason == "io_error" and (9, 1) not in scan.hung


def test_forked_worker_with_nothing_to_read_is_done_and_reaped():
    plan = diskscan.Plan(vgs=(), patterns=("/nonexistent/*",), timeout=1.0)
    running = worker.start(plan, "fork")
    out = worker.finish(running, time.monotonic() + 10)
    assert out.complete and out.error is None and out.heads == {}
    # finish() gives a done worker only a moment to exit; under load it may
    # take longer, and it must still exit and be reaped.
    deadline = time.monotonic() + 30
    while not worker.exited(running) and time.monotonic() < deadline:
        time.sleep(0.01)
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


def test_spawned_worker_imports_this_copy_of_the_package():
    import vgdrift
    assert os.path.join(worker.PACKAGE_PARENT, "vgdrift") == os.path.dirname(vgdrift.__file__)


def test_a_thread_stuck_in_a_read_is_not_counted_on_by_the_next_batch():
    """Reading threads are reused between batches (issue 13); one stuck in
    a read must not be handed the next batch's reads, or they would time
    out for want of a thread, not of an answer."""
    gate = threading.Event()
    assert diskscan.run_concurrently([lambda: gate.wait(60)], timeout=0.2, workers=1) == {}
    t0 = time.monotonic()
    assert diskscan.run_concurrently([lambda: 7], timeout=30, workers=1) == {0: 7}
    assert time.monotonic() - t0 < 10
    gate.set()


def test_reading_threads_are_reused_between_batches():
    diskscan.run_concurrently([lambda: 1] * 4, timeout=30, workers=4)
    time.sleep(0.2)     # the threads go back to idle
    before = threading.active_count()
    for _ in range(5):
        assert diskscan.run_concurrently([lambda: 1] * 4, timeout=30, workers=4) == {i: 1 for i in range(4)}
        time.sleep(0.05)
    assert threading.active_count() <= before


def test_persistent_worker_serves_scan_after_scan_and_exits_when_let_go():
    """serve's long-lived worker: one process for many scans; once let go
    (a read left behind, or the Scanner closed) it exits by itself."""
    pool = worker.Persistent()
    plan = diskscan.Plan(vgs=(), patterns=("/nonexistent/*",), timeout=1.0)
    pids = set()
    for _ in range(3):
        running = worker.start(plan, "spawn", pool)
        out = worker.finish(running, time.monotonic() + 60)
        assert out.complete and out.error is None and out.candidates == ()
        pids.add(running.pid)
    assert len(pids) == 1 and pool.spawned == 1 and not worker.exited(running)
    worker.retire(running)
    deadline = time.monotonic() + 30
    while not worker.exited(running) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.exited(running)
    # The next scan gets a new worker.
    again = worker.start(plan, "spawn", pool)
    assert worker.finish(again, time.monotonic() + 60).complete and again.pid != running.pid
    pool.close()
    deadline = time.monotonic() + 30
    while not worker.exited(again) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.exited(again) and pool.spawned == 2


def test_persistent_worker_past_the_deadline_is_replaced():
    pool = worker.Persistent()
    plan = diskscan.Plan(vgs=(), patterns=("/nonexistent/*",), timeout=1.0)
    running = worker.start(plan, "spawn", pool)
    out = worker.finish(running, time.monotonic())     # gave up at once
    assert not out.complete and pool.proc is None      # let go
    again = worker.start(plan, "spawn", pool)
    assert again.pid != running.pid and worker.finish(again, time.monotonic() + 60).complete
    pool.close()


def test_persistent_worker_that_dies_is_a_worker_that_did_not_finish(monkeypatch):
    """A long-lived worker that dies (before or after taking the plan) makes
    the scan's outcome an error, never a hang or an exception; the next
    scan starts a new one."""
    import subprocess
    import sys

    def dying(args):
        return subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    monkeypatch.setattr(worker, "_popen", dying)
    pool = worker.Persistent()
    plan = diskscan.Plan(vgs=(), patterns=("/nonexistent/*",), timeout=1.0)
    for _ in range(2):
        running = worker.start(plan, "spawn", pool)
        out = worker.finish(running, time.monotonic() + 60)
        assert not out.complete and out.error == "worker exited without finishing"
    assert pool.spawned >= 2
