"""The CLI's contract with failover scripts: exit codes and one-line errors,
without devices (the lab tests cover real disks)."""

import gzip
import json
import os
import shutil
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


# What a one-shot check must not import (issue 13: start-up is most of its
# time): the exporter's library, dataclasses (it imports inspect), shutil
# (bz2, lzma), concurrent.futures.
HEAVY = ("prometheus_client", "dataclasses", "inspect", "shutil", "concurrent.futures")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_check_that_reads_disks_stays_free_of_heavy_imports(fmt, tmp_path):
    import gzip
    with gzip.open(os.path.join(FIXTURES, "simple", "pv0.img.gz")) as f:
        (tmp_path / "pv0.img").write_bytes(f.read())
    code = ("import sys, io; from vgdrift.cli import main; sys.stdout = io.StringIO(); "
            f"rc = main(['check', '--format', {fmt!r}, '--cache-dir', {os.path.join(FIXTURES, 'simple', 'cache_a')!r}, "
            f"'--devices', {str(tmp_path / '*.img')!r}]); sys.stdout = sys.__stdout__; "
            f"print(int(rc), sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "0 []", (r.stdout, r.stderr)


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_unexpected_exception_is_unknown_with_one_line(fmt, tmp_path, monkeypatch, capsys):
    """A bug anywhere in check exits 3 ("unknown"), never 1 ("drift": go),
    with one line naming what failed and where; JSON still gets a document."""
    from vgdrift import scan

    def broken(*args):
        raise ValueError("something\nunexpected")
    monkeypatch.setattr(scan, "read_cache", broken)   # called from scan.py
    assert main(["check", "--cache-dir", str(tmp_path), "--format", fmt]) == 3
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines == ["vgdrift: internal error: ValueError: something unexpected (in scan, line "
                     + lines[0].rsplit("line ", 1)[1]]
    if fmt == "json":
        doc = json.loads(out)
        assert doc["exit_code"] == 3 and doc["vgs"] == [] and doc["version"] == 1
        assert doc["errors"] == [{"reason": "internal", "where": doc["errors"][0]["where"], "vg": None,
                                  "message": lines[0][len("vgdrift: "):]}]
        assert doc["errors"][0]["where"].startswith("scan, line ")
        from vgdrift import model, report
        empty = report.to_json(model.CheckResult("h", 0.0, 0.0, ()))
        assert list(doc) == list(empty)     # the same keys as any other document
    else:
        assert out == ""


def test_exception_while_rendering_is_unknown_and_names_the_module(monkeypatch, capsys):
    from vgdrift import report

    def overflow(epoch):
        raise OverflowError("timestamp out of range for platform time_t")
    monkeypatch.setattr(report, "_ts", overflow)
    code = main(["check", "--cache-dir", os.path.join(FIXTURES, "simple", "cache_a"),
                 "--devices", "/nonexistent/*"])
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert err.startswith("vgdrift: internal error: OverflowError: timestamp out of range")
    assert "(in report, line" in err
    assert len(err.strip().splitlines()) == 1


def test_with_vg_other_broken_cache_files_are_warnings(tmp_path):
    """--vg X checks X: a garbage file beside it must not block X's failover.
    Without --vg the garbage still makes the answer unknown."""
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), tmp_path / "vg0")
    (tmp_path / "notes.txt").write_text("not a backup {{{")
    images = tmp_path / "img"
    images.mkdir()
    with gzip.open(os.path.join(FIXTURES, "simple", "pv0.img.gz")) as f:
        (images / "pv0.img").write_bytes(f.read())
    r = run_cli("check", "--cache-dir", str(tmp_path), "--devices", str(images / "*.img"), "--vg", "vg0",
                "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 == doc["exit_code"], r.stderr
    assert doc["errors"] == [] and [w["where"] for w in doc["warnings"]] == [str(tmp_path / "notes.txt")]
    assert r.stderr.startswith(f"vgdrift: warning: {tmp_path}/notes.txt: line 1: ")
    r = run_cli("check", "--cache-dir", str(tmp_path), "--devices", str(images / "*.img"))
    assert r.returncode == 3 and f"{tmp_path}/notes.txt" in r.stderr
    # The VG's own file broken: not a warning.
    (tmp_path / "vg0").write_text("vg0 { garbage")
    r = run_cli("check", "--cache-dir", str(tmp_path), "--devices", str(images / "*.img"), "--vg", "vg0")
    assert r.returncode == 3 and f"{tmp_path}/vg0: " in r.stderr


# ------------------------------------------------------------ --lvm-system-dir

def _simple(tmp_path):
    """The simple fixture: a cache dir holding vg0, and its one PV image."""
    cache = tmp_path / "etc" / "cache"
    cache.mkdir(parents=True)
    shutil.copy(os.path.join(FIXTURES, "simple", "cache_a", "vg0"), cache / "vg0")
    with gzip.open(os.path.join(FIXTURES, "simple", "pv0.img.gz")) as f:
        (tmp_path / "pv0.img").write_bytes(f.read())
    return tmp_path / "etc", tmp_path / "pv0.img"


def _pvid(cache_file):
    from vgdrift.textmeta import parse_vg
    return parse_vg(open(cache_file, "rb").read(), "c").pvs[0].id.replace("-", "")


def test_unparseable_lvm_conf_is_exit_3_naming_file_and_line(tmp_path):
    etc, img = _simple(tmp_path)
    (etc / "lvm.conf").write_text("devices {\n    filter = [ \"a|.*|\" \n}\n")
    r = run_cli("check", "--lvm-system-dir", str(etc), "--cache-dir", str(etc / "cache"),
                "--devices", str(img), "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 3 == doc["exit_code"]
    (e,) = doc["errors"]
    assert e["reason"] == "config" and e["message"].startswith(f"{etc}/lvm.conf:3: ")
    assert r.stderr.strip().splitlines() == [f"vgdrift: {e['message']}"]


def test_cache_dir_defaults_to_the_configured_backup_dir_and_devices_file_blocks(tmp_path):
    etc, img = _simple(tmp_path)
    (etc / "lvm.conf").write_text(f'devices {{ use_devicesfile = 1 }}\nbackup {{ backup_dir = "{etc}/cache" }}\n'
                                  'activation { auto_activation_volume_list = [ ] }\n')
    (etc / "devices").mkdir()
    (etc / "devices" / "system.devices").write_text("VERSION=1.1.1\n")
    r = run_cli("check", "--lvm-system-dir", str(etc), "--devices", str(img), "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 2 == doc["exit_code"], r.stderr
    (vg,) = doc["vgs"]
    assert vg["cache"]["path"] == f"{etc}/cache/vg0"
    assert (vg["state"], vg["reason"]) == ("blocked", "devices_file")
    assert [b["device"] for b in vg["blockers"]] == [str(img)]
    assert vg["actions"][0]["command"] == f"lvm lvmdevices --adddev {img}"
    assert doc["lvm"] == {"system_dir": str(etc), "use_devicesfile": True,
                          "devices_file": f"{etc}/devices/system.devices",
                          "system_id_source": "none", "local_system_id": ""}
    # Listed: in sync.
    (etc / "devices" / "system.devices").write_text(
        f"VERSION=1.1.1\nIDTYPE=devname IDNAME={img} DEVNAME={img} PVID={_pvid(etc / 'cache' / 'vg0')}\n")
    r = run_cli("check", "--lvm-system-dir", str(etc), "--devices", str(img), "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["vgs"][0]["state"] == "in_sync" and doc["vgs"][0]["blockers"] == []
    assert doc["vgs"][0]["autoactivation"] is False and r.stderr == ""


def test_autoactivation_is_a_warning_with_advice(tmp_path):
    etc, img = _simple(tmp_path)
    (etc / "lvm.conf").write_text("devices { use_devicesfile = 0 }\n")
    r = run_cli("check", "--lvm-system-dir", str(etc), "--cache-dir", str(etc / "cache"),
                "--devices", str(img), "--format", "json")
    doc = json.loads(r.stdout)
    (vg,) = doc["vgs"]
    assert r.returncode == 0 and vg["state"] == "in_sync" and vg["autoactivation"] is True
    assert [a["command"] for a in vg["actions"]] == [None]
    assert vg["actions"][0]["reason"].endswith("vgchange --setautoactivation n vg0")
    assert [w["vg"] for w in doc["warnings"]] == ["vg0"]
    assert r.stderr.startswith("vgdrift: warning: VG vg0: this node's LVM would activate it")


def test_devices_file_that_cannot_be_read_is_unknown_not_in_sync(tmp_path):
    etc, img = _simple(tmp_path)
    (etc / "lvm.conf").write_text('devices { use_devicesfile = 1 }\nactivation { auto_activation_volume_list = [ ] }\n')
    (etc / "devices" / "system.devices").mkdir(parents=True)      # not a file
    r = run_cli("check", "--lvm-system-dir", str(etc), "--cache-dir", str(etc / "cache"),
                "--devices", str(img), "--format", "json")
    doc = json.loads(r.stdout)
    (vg,) = doc["vgs"]
    assert r.returncode == 3 == doc["exit_code"]
    assert (vg["state"], vg["reason"]) == ("unknown", "readiness")
    assert vg["actions"][0]["command"] is None and "cannot tell" in vg["actions"][0]["reason"]
    assert any("is a directory" in w["message"] for w in doc["warnings"])
