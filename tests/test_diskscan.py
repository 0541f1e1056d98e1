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
