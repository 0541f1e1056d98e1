"""Small helpers that several test modules need the same way (the lab's own
helpers live in lab.py).  Import as `from helpers import ...`: conftest.py
puts tests/ on sys.path."""

import gzip
import hashlib
import http.client
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

# The exporter's metric contract (names are fixed).  Restated here rather
# than taken from the exporter, so renaming a metric breaks the alert and
# dashboard tests that rely on it.
EXPORTER_METRICS = frozenset({
    "vgdrift_vg_state", "vgdrift_vg_drift", "vgdrift_vg_seqno",
    "vgdrift_vg_mtime_seconds", "vgdrift_vg_drift_seconds", "vgdrift_vg_pvs",
    "vgdrift_vg_info", "vgdrift_vg_scan_duration_seconds",
    "vgdrift_scan_duration_seconds_bucket", "vgdrift_scan_duration_seconds_sum",
    "vgdrift_scan_duration_seconds_count", "vgdrift_scans_total",
    "vgdrift_scan_errors_total", "vgdrift_last_scan_timestamp_seconds",
    "vgdrift_last_scan_success", "vgdrift_device_reads_total",
    "vgdrift_device_read_bytes_total", "vgdrift_build_info",
    "vgdrift_vg_blocked", "vgdrift_vg_owned", "vgdrift_vg_autoactivation", "vgdrift_node_lvm_info",
    "vgdrift_unknown_vg_info", "vgdrift_unknown_vgs", "vgdrift_last_discovery_timestamp_seconds",
})


def require_tool(*names, package):
    """The path of the first of `names` on PATH.  CI installs these tools,
    so a missing one fails the test (with the Debian package to install)
    rather than skipping it."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{names[0]} not found on PATH: install the Debian package "
                f"{package} (apt-get install {package}); CI installs it",
                pytrace=False)


DRIFT = Path(__file__).resolve().parent / "fixtures" / "drift"


def drift_node(dest: Path):
    """(cache, devs) under dest: the `drift` fixture's vg0 backup (node A's,
    in sync) and its two PV images unpacked, for an exporter to serve."""
    cache, devs = dest / "cache", dest / "devs"
    cache.mkdir()
    devs.mkdir()
    shutil.copy(DRIFT / "cache_a" / "vg0", cache / "vg0")
    for n in (0, 1):
        with gzip.open(DRIFT / f"pv{n}.img.gz") as f:
            (devs / f"pv{n}.img").write_bytes(f.read())
    return cache, devs


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server the
    test starts (it may race another process, which the tests accept)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_get(port, path, timeout=5.0):
    """(status, body) of GET http://127.0.0.1:port/path on a fresh
    connection, closed afterwards whatever happens."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def stop_process(proc, grace=10):
    """SIGTERM `proc` if it still runs, SIGKILL it after `grace` seconds,
    and reap it, so no test leaves a daemon or a zombie behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sha256_files(paths):
    """{str(path): sha256 hex digest} of each file, read in 1 MiB blocks:
    taken before and after a run, it proves the run wrote nothing."""
    out = {}
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[str(p)] = h.hexdigest()
    return out
