"""Shared pytest setup: tests/ on sys.path (for `from lab import Lab`), the
two-node lab fixture and the root/LVM requirement check.

Lab tests FAIL, not skip, where they cannot run (not root, no lvm, no loop
devices): on CI they must run. Set VGDRIFT_SKIP_LAB=1 to skip them on a
developer machine without root.
"""

import os
import shutil
import subprocess
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

LAB_FIXTURES = {"lab", "requires_root_lab", "requires_fuse"}

# vgdrift reads this node's LVM configuration ($LVM_SYSTEM_DIR, else
# /etc/lvm): tests, and the checks they run as subprocesses, read a fixed
# one instead of the test machine's (fixtures/node/tests/lvm.conf says
# what it holds).  Tests about the configuration pass --lvm-system-dir.
TEST_LVM_SYSTEM_DIR = os.path.join(TESTS_DIR, "fixtures", "node", "tests")
os.environ["LVM_SYSTEM_DIR"] = TEST_LVM_SYSTEM_DIR


def lab_problem():
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (loop devices, LVM)"
    for tool in ("lvm", "losetup"):
        if shutil.which(tool) is None:
            return f"the lab needs '{tool}' in PATH (apt install lvm2 util-linux)"
    if not os.path.exists("/dev/loop-control"):
        return "the lab needs loop devices (/dev/loop-control missing)"
    return None


def fuse_problem():
    if not os.path.exists("/dev/fuse"):
        return "FUSE tests need /dev/fuse"
    if not any(shutil.which(t) for t in ("fusermount", "fusermount3", "umount")):
        return "FUSE tests need fusermount, fusermount3 or umount"
    r = subprocess.run([sys.executable, "-c", "import fuse"], capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"FUSE tests need fusepy and libfuse2 (apt install libfuse2): {last}"
    return None


def _require(problem):
    if problem is None:
        return
    if os.environ.get("VGDRIFT_SKIP_LAB") == "1":
        pytest.skip(problem + " (VGDRIFT_SKIP_LAB=1)")
    pytest.fail(problem + "; set VGDRIFT_SKIP_LAB=1 to skip lab tests", pytrace=False)


@pytest.fixture
def requires_root_lab():
    """Fail (or skip with VGDRIFT_SKIP_LAB=1) unless the lab can run."""
    _require(lab_problem())


@pytest.fixture
def requires_fuse(requires_root_lab):
    _require(fuse_problem())


@pytest.fixture
def lab(requires_root_lab, tmp_path):
    """A fresh two-node Lab, torn down even when the test fails."""
    from lab import Lab
    the_lab = Lab(tmp_path / "lab")
    try:
        yield the_lab
    finally:
        the_lab.close()
        left = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
        left = [l for l in left.splitlines() if str(tmp_path) in l]
        assert not left, f"lab left loop devices behind: {left}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(params=["start_tls", "asyncio_tls"])
def tls_path(request, monkeypatch):
    """Runs a TLS test through both ways the server does TLS: start_tls after
    the accept, and asyncio's TLS from the accept on (Python 3.9's only
    working way, serve/server.py).  On 3.9 both runs take the second."""
    from vgdrift.serve import server
    if request.param == "asyncio_tls":
        monkeypatch.setattr(server.ExporterServer, "ASYNCIO_TLS", True)

        async def no_start_tls(self, ctx):
            raise AssertionError("start_tls used although ASYNCIO_TLS is set")
        monkeypatch.setattr(server.Connection, "_handshake", no_start_tls)
    return request.param
