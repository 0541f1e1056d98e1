"""`vgdrift check` end to end on real LVM2-made PV images used as regular
files (no root, no loop devices): every fixture case, corrupted copies, the
shipped demo."""

import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

from vgdrift import demo
from vgdrift.disk import ondisk

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
EXPORTER = os.path.join(os.path.dirname(HERE), "exporter")
MANIFEST = json.load(open(os.path.join(FIXTURES, "manifest.json")))
CACHES = [(case, cache) for case, c in MANIFEST["cases"].items() for cache in c["caches"]]


def unpack(case: str, dest) -> list:
    paths = []
    for img in MANIFEST["cases"][case]["images"]:
        path = dest / os.path.basename(img["file"])[:-3]
        with gzip.open(os.path.join(FIXTURES, img["file"])) as f:
            path.write_bytes(f.read())
        paths.append(path)
    return paths


def check(*args):
    r = subprocess.run([sys.executable, "-m", "vgdrift", "check", "--format", "json", *map(str, args)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout), r.stderr


@pytest.mark.parametrize("case,cache", CACHES, ids=[f"{c}-{k['dir']}" for c, k in CACHES])
def test_fixture_case(case, cache, tmp_path):
    unpack(case, tmp_path)
    code, doc, _ = check("--cache-dir", os.path.join(FIXTURES, cache["dir"]), "--devices", tmp_path / "*.img")
    states = {vg["name"]: vg["state"] for vg in doc["vgs"]}
    assert states == {name: v["expect"] for name, v in cache["vgs"].items()}
    for vg in doc["vgs"]:
        want = cache["vgs"][vg["name"]]
        assert vg["cache"]["seqno"] == want["seqno"] and vg["uuid"] == want["vg_uuid"]
        assert [c["type"] for c in vg["changes"]] == want["changes"] or vg["state"] != "drift"
    assert code == doc["exit_code"] == max({"in_sync": 0, "drift": 1}.get(s, 2) for s in states.values())


def test_zero_and_two_mda_pvs_are_all_found(tmp_path):
    for case in ("zero_mda", "two_mdas"):
        d = tmp_path / case
        d.mkdir()
        unpack(case, d)
        _, doc, _ = check("--cache-dir", os.path.join(FIXTURES, case, "cache_a"), "--devices", d / "*.img")
        vg = doc["vgs"][0]
        assert vg["state"] == "in_sync"
        assert all(p["state"] == "ok" for p in vg["pvs"])
        if case == "zero_mda":
            assert sorted(p["seqno"] is None for p in vg["pvs"]) == [False, True]


def test_reads_stay_within_budget(tmp_path):
    unpack("big", tmp_path)
    _, doc, _ = check("--cache-dir", os.path.join(FIXTURES, "big", "cache_a"), "--devices", tmp_path / "*.img")
    pvs = len(doc["vgs"][0]["pvs"])
    # one read for label + header per PV (hints miss here: one more for the
    # header after the label-only scan), the text once per VG.
    assert doc["reads"] <= 2 * pvs + 2, doc["reads"]
    assert doc["read_bytes"] < 256 * 1024


def _corrupt(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_corrupt_label_and_text_never_traceback_and_never_write(tmp_path):
    (img,) = unpack("simple", tmp_path)
    cache = os.path.join(FIXTURES, "simple", "cache_a")
    raw = bytearray(img.read_bytes())
    hdr = ondisk.parse_mda_header(bytes(raw[4096:4608]), "x", 4096)
    text_at = hdr.start + hdr.committed.offset
    _corrupt(img, text_at + 20, b"#")                       # text no longer matches its checksum
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    code, doc, err = check("--cache-dir", cache, "--devices", img)
    assert code == 2 and doc["vgs"][0]["state"] == "unreadable" and doc["vgs"][0]["reason"] == "corrupt"
    assert doc["vgs"][0]["pvs"][0]["state"] == "corrupt"
    assert "metadata text checksum" in err and len(err.strip().splitlines()) == 1
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before

    img.write_bytes(bytes(raw))
    _corrupt(img, 512 + 100, b"\xff")                       # label checksum fails
    code, doc, err = check("--cache-dir", cache, "--devices", img)
    assert code == 2 and doc["vgs"][0]["state"] == "unreadable"
    assert doc["vgs"][0]["pvs"][0]["state"] == "corrupt" and "label checksum" in err

    img.write_bytes(bytes(raw))
    h = bytearray(raw[4096:4608])
    struct.pack_into("<QQ", h, 40, 1 << 40, 1 << 40)        # text location past the area
    struct.pack_into("<I", h, 0, ondisk.crc(bytes(h[4:])))
    _corrupt(img, 4096, bytes(h))
    code, doc, err = check("--cache-dir", cache, "--devices", img)
    assert code == 2 and "metadata location" in err


def test_truncated_and_empty_devices(tmp_path):
    (img,) = unpack("simple", tmp_path)
    cache = os.path.join(FIXTURES, "simple", "cache_a")
    img.write_bytes(img.read_bytes()[:6000])                # text cut off
    code, doc, err = check("--cache-dir", cache, "--devices", img)
    assert code == 2 and doc["vgs"][0]["state"] in ("unreadable", "missing")
    img.write_bytes(b"")
    code, doc, _ = check("--cache-dir", cache, "--devices", img)
    assert code == 2 and doc["vgs"][0]["state"] == "missing"


def test_demo_shows_drift(tmp_path):
    demo.unpack(str(tmp_path))
    code, doc, _ = check("--cache-dir", tmp_path / "cache", "--devices", tmp_path / "disks" / "*.img")
    states = {vg["name"]: vg["state"] for vg in doc["vgs"]}
    assert states == {"demo_data": "drift", "demo_logs": "in_sync"} and code == 1
    data = next(vg for vg in doc["vgs"] if vg["name"] == "demo_data")
    assert {c["type"] for c in data["changes"]} == {"lv_added", "lv_resized"}
    # The demo cache is not LVM's backup directory: the refresh names its file.
    assert data["actions"][-1]["command"] == f"vgcfgbackup -f {tmp_path / 'cache' / 'demo_data'} demo_data"


def test_corrupt_first_metadata_area_is_reported_and_second_used(tmp_path):
    (img,) = unpack("two_mdas", tmp_path)
    _corrupt(img, 4096 + 100, b"\xff\xff")                  # first area's header checksum fails
    code, doc, err = check("--cache-dir", os.path.join(FIXTURES, "two_mdas", "cache_a"), "--devices", img)
    vg = doc["vgs"][0]
    assert code == 2 and vg["state"] == "inconsistent" and vg["reason"] == "corrupt"
    assert vg["disk"]["seqno"] == vg["cache"]["seqno"]      # read from the second area
    assert vg["pvs"][0]["state"] == "corrupt" and "checksum" in vg["pvs"][0]["error"]


def test_device_without_permission_is_unknown_exit_3(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop the capabilities that bypass permissions")
    (img,) = unpack("simple", tmp_path)
    os.chown(img, 65534, 65534)
    os.chmod(img, 0o600)
    r = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable,
                        "-m", "vgdrift", "check", "--format", "json", "--cache-dir",
                        os.path.join(FIXTURES, "simple", "cache_a"), "--devices", str(img)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=EXPORTER), timeout=60)
    doc = json.loads(r.stdout)
    assert r.returncode == 3 == doc["exit_code"], r.stderr
    assert doc["vgs"][0]["state"] == "unreadable" and doc["errors"][0]["reason"] == "permission"
    assert "Permission denied" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_devices_are_globbed_once_in_the_worker(tmp_path, monkeypatch):
    """The candidate list comes from the worker with its results; the parent
    never globs again (a second glob could see another set of devices)."""
    from vgdrift.disk import locate
    from vgdrift.scan import Scanner, ScanOptions
    unpack("simple", tmp_path)
    calls = []
    real = locate.expand_globs
    parent = os.getpid()

    def counting(patterns):
        if os.getpid() == parent:
            calls.append(tuple(patterns))
        return real(patterns)
    monkeypatch.setattr(locate, "expand_globs", counting)
    pattern = str(tmp_path / "*.img")
    result = Scanner(ScanOptions(cache_dirs=(os.path.join(FIXTURES, "simple", "cache_a"),),
                                 device_globs=(pattern,)), isolation="fork").scan()
    assert calls == [] and [vg.state for vg in result.vgs] == ["in_sync"]
    nothing = Scanner(ScanOptions(cache_dirs=(os.path.join(FIXTURES, "simple", "cache_a"),),
                                  device_globs=(str(tmp_path / "none*"),)), isolation="fork").scan()
    assert calls == []
    assert any("no device matches" in w.message for w in nothing.warnings)


def test_scanner_reads_the_lvm_configuration_again_only_when_it_changes(tmp_path):
    """serve keeps one Scanner: lvm.conf is parsed once, and again when it
    changes; the change shows in the next scan."""
    from vgdrift import model as m
    from vgdrift.scan import Scanner, ScanOptions
    (img,) = unpack("simple", tmp_path)
    etc = tmp_path / "etc"
    etc.mkdir()
    conf = etc / "lvm.conf"
    conf.write_text("devices { use_devicesfile = 0 }\nactivation { auto_activation_volume_list = [ ] }\n")
    scanner = Scanner(ScanOptions(cache_dirs=(os.path.join(FIXTURES, "simple", "cache_a"),),
                                  device_globs=(str(img),), lvm_system_dir=str(etc)), isolation="fork")
    for _ in range(2):
        result = scanner.scan()
        assert [v.state for v in result.vgs] == [m.IN_SYNC] and result.lvm.system_dir == str(etc)
    assert scanner.lvm_config.reads == 1
    conf.write_text(conf.read_text() + 'devices { filter = [ "r|pv0[.]img|" ] }\n')
    result = scanner.scan()
    assert scanner.lvm_config.reads == 2
    (vg,) = result.vgs
    assert (vg.state, vg.reason) == (m.BLOCKED, "filter") and vg.blockers[0].device == str(img)
    # Unparseable: an error naming file and line, the answer unknown.
    conf.write_text("devices {\n")
    result = scanner.scan()
    assert result.unknown and result.exit_code == m.EXIT_UNKNOWN
    assert [(e.reason, e.message.split(": ")[0]) for e in result.errors] == [("config", f"{conf}:2")]


def _summary(result):
    return [(vg.name, vg.state, vg.reason, [(pv.uuid, pv.state, pv.seqno) for pv in vg.pvs],
             [c.kind for c in vg.changes]) for vg in result.vgs], result.reads, result.exit_code


def test_one_shot_check_reads_from_the_sketch_and_rereads_when_it_was_wrong(tmp_path, monkeypatch):
    """A one-shot check starts its worker from a sketch of the cache
    (node/cache.py) and parses meanwhile.  Right sketch: that worker's
    answer, no other worker.  Wrong sketch (spacing LVM does not write, so
    one PV is left out): that worker is let go and the parse's plan is read;
    the answer is the same as with no sketch at all."""
    from vgdrift.disk import worker
    from vgdrift.node import cache
    from vgdrift.scan import Scanner, ScanOptions
    (tmp_path / "disks").mkdir()
    unpack("drift", tmp_path / "disks")
    cached = tmp_path / "cache"
    cached.mkdir()
    shutil.copy(os.path.join(FIXTURES, "drift", "cache_b", "vg0"), cached / "vg0")
    options = ScanOptions(cache_dirs=(str(cached),), device_globs=(str(tmp_path / "disks" / "*.img"),))
    started = []
    real_start = worker.start
    monkeypatch.setattr(worker, "start", lambda plan, *a: started.append(plan) or real_start(plan, *a))

    scanner = Scanner(options, isolation="fork")
    right = _summary(scanner.scan())
    assert len(started) == 1 and scanner.abandoned == {}
    assert right[0][0][1] == "drift" and right[2] == 1

    text = (cached / "vg0").read_text()
    (cached / "vg0").write_text(text.replace("\t\t\tdevice = ", "\t\t\tdevice  =  ", 1))
    started.clear()
    scanner = Scanner(options, isolation="fork")
    wrong = _summary(scanner.scan())
    assert len(started) == 2 and started[0] != started[1] and len(scanner.abandoned) == 1
    assert wrong == right

    started.clear()
    monkeypatch.setattr(cache, "sketch", lambda dirs: None)
    assert _summary(Scanner(options, isolation="fork").scan()) == right and len(started) == 1
