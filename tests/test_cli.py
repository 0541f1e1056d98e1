"""The CLI's contract with failover scripts: exit codes and one-line errors,
without devices (the lab tests cover real disks)."""

import json
import os
import subprocess
import sys

import pytest

from vgdrift.cli import main

EXPORTER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exporter")


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=EXPORTER)
    return subprocess.run([sys.executable, "-m", "vgdrift", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


@pytest.mark.parametrize("args", [
    ["check", "--bogus"],
    ["check", "--timeout", "abc"],
    ["check", "--timeout", "-1"],
    ["check", "--format", "xml"],
    ["nosuch"],
    [],
])
def test_bad_flags_exit_3_with_one_line(args):
    r = run_cli(*args)
    assert r.returncode == 3
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgdrift") and "Traceback" not in r.stderr


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert main(["check", "--help"]) == 0
    assert "--cache-dir" in capsys.readouterr().out


def test_no_cached_vgs_says_so_and_exits_0(tmp_path):
    r = run_cli("check", "--cache-dir", str(tmp_path), "--devices", str(tmp_path / "none*"))
    assert r.returncode == 0 and "no cached VGs" in r.stdout
    r = run_cli("check", "--cache-dir", str(tmp_path), "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["vgs"] == [] and doc["exit_code"] == 0 and doc["version"] == 1


def test_garbage_cache_file_is_reported_and_exit_3(tmp_path):
    (tmp_path / "broken").write_bytes(b"vg0 {\n id = \"x\"\n seqno = \n}\n")
    (tmp_path / "binary").write_bytes(os.urandom(300) + b"\0")
    (tmp_path / ".lvm_host_123_456").write_bytes(b"temporary {{{")   # LVM's temp file: skipped
    (tmp_path / "vg0.tmp").write_bytes(b"also {{{ skipped")
    r = run_cli("check", "--cache-dir", str(tmp_path), "--devices", str(tmp_path / "none*"))
    assert r.returncode == 3, r.stderr
    err = r.stderr.strip().splitlines()
    assert any(f"{tmp_path}/broken: line 4: expected a value" in line for line in err), err
    assert any(f"{tmp_path}/binary" in line for line in err), err
    assert not any(".lvm_host" in line or "vg0.tmp" in line for line in err)
    assert "Traceback" not in r.stderr


def test_unknown_vg_and_missing_cache_dir_exit_3(tmp_path):
    r = run_cli("check", "--cache-dir", str(tmp_path), "--vg", "nosuch")
    assert r.returncode == 3 and "VG nosuch is not in the cache" in r.stderr
    r = run_cli("check", "--cache-dir", str(tmp_path / "absent"))
    assert r.returncode == 3 and f"{tmp_path}/absent: cannot list cache directory" in r.stderr


def test_unreadable_cache_dir_without_privilege_exit_3(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop the capabilities that bypass permissions")
    d = tmp_path / "cache"
    d.mkdir()
    (d / "vg0").write_text("x")
    os.chown(d, 65534, 65534)
    os.chmod(d, 0o700)
    # Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH is refused like any
    # other user, and still runs the venv's interpreter (under /root).
    r = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable,
                        "-m", "vgdrift", "check", "--cache-dir", str(d)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=EXPORTER),
                       cwd="/", timeout=60)
    assert r.returncode == 3, r.stderr
    assert f"{d}: cannot list cache directory: Permission denied" in r.stderr and "Traceback" not in r.stderr


def test_check_does_not_import_prometheus():
    code = ("import sys; from vgdrift.cli import main; main(['check', '--cache-dir', '/nonexistent']); "
            "print('prometheus_client' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=EXPORTER))
    assert r.stdout.strip().splitlines()[-1] == "False"
