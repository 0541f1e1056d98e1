"""`vgdrift check --discover` against real LVM2 in the two-node lab (issue
11): VGs on node B's devices that no cache file of B describes.

Node A creates and changes VGs; node B is checked (its cache, its LVM
configuration, its loops).  run_check (test_lab_check.py) also proves that
nothing was written."""

import shlex
import subprocess
import sys

from lab import make_vg
from test_lab_check import EXPORTER, run_check, states, uuid_of


def unknown(doc):
    return {u["name"]: u for u in doc["unknown_vgs"]}


def test_vg_created_elsewhere_is_unknown_until_refreshed(lab):
    make_vg(lab, "vgknown", [lab.add_disk("k0")])
    lab.b.vgcfgbackup("vgknown")
    d1, d2 = lab.add_disk("n1"), lab.add_disk("n2")
    make_vg(lab, "vgnew", [d1, d2])
    truth = lab.a.vgs_truth("vgnew")

    # Without --discover nothing is read beyond the cached VGs.
    r, doc = run_check(lab)
    assert r.returncode == 0 and doc["unknown_vgs"] == [] and doc["discovered"] is None

    r, doc = run_check(lab, "--discover")
    assert r.returncode == 1, r.stderr
    assert states(doc) == {"vgknown": "in_sync"}
    assert doc["discovered"] is not None
    (u,) = doc["unknown_vgs"]
    assert (u["name"], u["uuid"], u["seqno"]) == ("vgnew", truth["uuid"], truth["seqno"])
    assert u["host"] and u["system_id"] == ""
    # Where node B sees each PV: its own loops, not node A's names.
    assert sorted((p["uuid"], p["device"]) for p in u["pvs"]) == sorted(
        [(uuid_of(d1), d1.b), (uuid_of(d2), d2.b)])
    assert [a["command"] for a in u["actions"]] == ["vgcfgbackup vgnew"]

    # The text report has its own section, with the same command.
    t = subprocess.run([sys.executable, "-m", "vgdrift", "check", "--discover", "--cache-dir",
                        str(lab.b.backup_dir), "--lvm-system-dir", str(lab.b.system_dir)]
                       + [a for d in lab.b.devices for a in ("--devices", d)],
                       capture_output=True, text=True, env={"PYTHONPATH": str(EXPORTER), "PATH": "/usr/bin:/bin"})
    assert t.returncode == 1, t.stderr
    assert "no cache file describes" in t.stdout and "run:     vgcfgbackup vgnew" in t.stdout

    # Following the action as node B: the VG is cached, no longer unknown.
    lab.b.lvm(*shlex.split(u["actions"][-1]["command"]))
    r, doc = run_check(lab, "--discover")
    assert r.returncode == 0 and doc["unknown_vgs"] == []
    assert states(doc) == {"vgknown": "in_sync", "vgnew": "in_sync"}


def test_vg_filters_apply_to_discovered_vgs(lab):
    make_vg(lab, "vga", [lab.add_disk("a0")])
    make_vg(lab, "vgb", [lab.add_disk("b0")])
    r, doc = run_check(lab, "--discover")
    assert r.returncode == 1 and sorted(unknown(doc)) == ["vga", "vgb"]
    r, doc = run_check(lab, "--discover", "--exclude-vg", "vga")
    assert r.returncode == 1 and sorted(unknown(doc)) == ["vgb"]
    # --vg NAME of a VG found by discovery: that is the answer, not the
    # "not in the cache" error (exit 3) it is without --discover.
    r, doc = run_check(lab, "--discover", "--vg", "vgb")
    assert sorted(unknown(doc)) == ["vgb"] and r.returncode == 1 and doc["errors"] == []
    r, doc = run_check(lab, "--vg", "vgb")
    assert r.returncode == 3 and [e["vg"] for e in doc["errors"]] == ["vgb"]
    r, doc = run_check(lab, "--discover", "--vg", "vgb", "--vg", "vgnone")
    assert r.returncode == 3 and [e["vg"] for e in doc["errors"]] == ["vgnone"]
    r, doc = run_check(lab, "--discover", "--exclude-vg", "vga", "--exclude-vg", "vgb")
    assert r.returncode == 0 and doc["unknown_vgs"] == []


def test_orphan_pvs_are_not_unknown_vgs(lab):
    d0 = lab.add_disk("o0")
    lab.a.lvm("pvcreate", d0.a)
    r, doc = run_check(lab, "--discover")
    assert r.returncode == 0 and doc["unknown_vgs"] == [] and doc["vgs"] == []


def test_devices_file_blocker_comes_before_the_refresh(lab):
    make_vg(lab, "vgk", [lab.add_disk("k0")])
    lab.b.vgcfgbackup("vgk")
    d1 = lab.add_disk("n1")
    make_vg(lab, "vgnew", [d1])
    # Node B uses a devices file listing only the cached VG's PV.
    from lab import lvmdevices, set_lvmlocal
    set_lvmlocal(lab.b, "devices {\n  use_devicesfile = 1\n}\n")
    lvmdevices(lab.b, "--adddev", lab.disks[0].b)
    r, doc = run_check(lab, "--discover")
    (u,) = doc["unknown_vgs"]
    assert r.returncode == 2, r.stderr
    assert [b["reason"] for b in u["blockers"]] == ["devices_file"]
    assert [a["command"] for a in u["actions"]] == [f"lvm lvmdevices --adddev {d1.b}", "vgcfgbackup vgnew"]


def _scanner(lab, **options):
    from vgdrift.scan import Scanner, ScanOptions
    return Scanner(ScanOptions(cache_dirs=(str(lab.b.backup_dir),), device_globs=tuple(lab.b.devices),
                               lvm_system_dir=str(lab.b.system_dir), **options), isolation="fork")


def test_a_backup_written_after_the_labels_were_read_is_not_unknown(lab, monkeypatch):
    """The node that creates a VG writes the disks, then its backup: a scan
    in between must not report the VG as unknown (the cache is read again
    after the labels)."""
    make_vg(lab, "vgnew", [lab.add_disk("n1")])
    scanner = _scanner(lab, discover=True)
    real = scanner._read_disks

    def read_then_backup(*args, **kwargs):
        got = real(*args, **kwargs)
        lab.b.vgcfgbackup("vgnew")
        return got

    monkeypatch.setattr(scanner, "_read_disks", read_then_backup)
    result = scanner.scan()
    assert result.unknown_vgs == () and result.discovered is not None
    # The same scan without the late backup does report it (the test can fail).
    lab.b.backup_path("vgnew").unlink()
    assert [u.name for u in _scanner(lab, discover=True).scan().unknown_vgs] == ["vgnew"]


def test_serve_keeps_the_last_discovery_between_discoveries(lab):
    make_vg(lab, "vgnew", [lab.add_disk("n1")])
    later = lab.add_disk("n2")
    scanner = _scanner(lab, discovery_interval=3600.0)
    first = scanner.scan()                       # the first scan discovers
    assert [u.name for u in first.unknown_vgs] == ["vgnew"] and first.discovered is not None
    make_vg(lab, "vglater", [later])
    second = scanner.scan()                      # no discovery due: the last one's findings
    assert [u.name for u in second.unknown_vgs] == ["vgnew"] and second.discovered == first.discovered
    # A refresh here resolves it at the next scan, without waiting for a discovery.
    lab.b.vgcfgbackup("vgnew")
    third = scanner.scan()
    assert third.unknown_vgs == () and [v.name for v in third.vgs] == ["vgnew"]
    fourth = scanner.scan(discover=True)
    assert [u.name for u in fourth.unknown_vgs] == ["vglater"] and fourth.discovered > first.discovered
    never = _scanner(lab, discovery_interval=0.0).scan()
    assert never.unknown_vgs == () and never.discovered is None
