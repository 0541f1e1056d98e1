"""Devices this process may not open: the message names the devices that
were refused (not another PV's) and says what is needed, and the advice is
not the multipath advice given for I/O errors."""

import gzip
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
EXPORTER = os.path.join(os.path.dirname(HERE), "exporter")


def test_each_pv_names_the_refused_devices_and_what_is_needed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop the capabilities that bypass permissions")
    images = []
    for n in (0, 1):
        path = tmp_path / f"pv{n}.img"
        with gzip.open(os.path.join(FIXTURES, "drift", f"pv{n}.img.gz")) as f:
            path.write_bytes(f.read())
        os.chown(path, 65534, 65534)
        os.chmod(path, 0o600)
        images.append(str(path))
    r = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable,
                        "-m", "vgdrift", "check", "--format", "json", "--cache-dir",
                        os.path.join(FIXTURES, "drift", "cache_a"), "--devices", str(tmp_path / "*.img")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=60)
    doc = json.loads(r.stdout)
    assert r.returncode == 3 == doc["exit_code"], r.stderr
    (vg,) = doc["vgs"]
    assert vg["state"] == "unreadable"
    for pv in vg["pvs"]:
        assert pv["state"] == "unreadable"
        # Either PV may be on either refused device: both are named.
        assert all(img in pv["error"] for img in images), pv["error"]
        assert "CAP_DAC_READ_SEARCH" in pv["error"]
    advice = " ".join(a["reason"] for a in vg["actions"])
    assert "CAP_DAC_READ_SEARCH" in advice and "multipath" not in advice
    assert {e["reason"] for e in doc["errors"]} == {"permission"}
    assert "Traceback" not in r.stderr
