"""Divergent duplicates and outdated PVs, on real LVM2 in the two-node lab.

A stale replica is a copy of a PV's image (`cp --sparse=always`) taken
before node A changed the VG, attached as one more loop on node B: the same
PV uuid with an older copy.  An outdated PV is one that node A could not
reach when it ran `vgreduce --removemissing`: it keeps the previous copy,
which the newest copy no longer lists.
"""

import os
import subprocess
import sys

from lab import make_vg, pv_layout, run_actions
from test_lab_check import EXPORTER, assert_pvs, change_types, commands, run_check, states, uuid_of, vg_of


def snapshot(lab, disk, name):
    """A block-level copy of `disk` as it is now (another file: sysfs cannot
    tell it from a different LUN)."""
    copy = lab.image_dir / f"{name}.img"
    subprocess.run(["cp", "--sparse=always", str(disk.image), str(copy)], check=True)
    return copy


def attach_copy(lab, image, disk):
    """Presents a copy to node B as one more loop (detached in teardown)."""
    return lab._attach(image, disk.sector_size)



def check_text(lab, devices):
    cmd = [sys.executable, "-m", "vgdrift", "check", "--cache-dir", str(lab.b.backup_dir)]
    for d in devices:
        cmd += ["--devices", d]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(EXPORTER)))


# --------------------------------------------------- divergent duplicates

def test_stale_replica_beside_the_real_pv_is_inconsistent(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    old = snapshot(lab, d0, "d0-before")                     # seqno 2
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")    # seqno 3
    lab.b.vgcfgbackup("vg0")
    replica = attach_copy(lab, old, d0)
    assert pv_layout(old)["pv_uuid"] == uuid_of(d0)

    for devices in ([d0.b, d1.b, replica], [replica, d1.b, d0.b]):
        r, doc = run_check(lab, devices=devices)
        vg = vg_of(doc, "vg0")
        assert r.returncode == 2 and vg["state"] == "inconsistent" and vg["reason"] == "divergent_duplicate"
        assert vg["disk"]["seqno"] == 3
        # Each device with its own seqno; the hinted one first.
        assert_pvs(vg, [(d0, d0.b, "ok", 3), (d0, replica, "duplicate", 2), (d1, d1.b, "ok", 3)])
        err = vg["pvs"][1]["error"]
        assert f"{replica} holds seqno 2" in err and f"{d0.b} holds seqno 3" in err
        assert commands(vg) == [None] and "stale copy" in vg["actions"][0]["reason"]

    # The text report says which device holds which.
    t = check_text(lab, [d0.b, d1.b, replica])
    assert t.returncode == 2 and "Traceback" not in t.stderr
    assert f"({replica}, seqno 2): duplicate" in t.stdout and f"{d0.b} holds seqno 3" in t.stdout


def test_stale_replica_is_inconsistent_whatever_the_hint_says(lab):
    """The cache hints at the replica, and the cache is at the replica's
    seqno: the replica alone would look in sync, the real PV alone drifted."""
    d0 = lab.add_disk("d0")
    make_vg(lab, "vg0", [d0])
    lab.b.vgcfgbackup("vg0")                                  # seqno 2
    old = snapshot(lab, d0, "d0-before")
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")    # seqno 3
    replica = attach_copy(lab, old, d0)
    backup = lab.b.backup_path("vg0")
    text = backup.read_text()
    assert f'device = "{d0.b}"' in text
    backup.write_text(text.replace(f'device = "{d0.b}"', f'device = "{replica}"'))

    r, doc = run_check(lab, devices=[d0.b, replica])
    vg = vg_of(doc, "vg0")
    assert r.returncode == 2 and vg["state"] == "inconsistent" and vg["reason"] == "divergent_duplicate"
    assert_pvs(vg, [(d0, replica, "ok", 2), (d0, d0.b, "duplicate", 3)])
    assert vg["disk"]["seqno"] == 3


def test_identical_copy_and_the_other_nodes_path_are_duplicates(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    clone = attach_copy(lab, snapshot(lab, d0, "d0-after"), d0)   # after the last change
    lab.b.vgcfgbackup("vg0")

    # Node A's loops are siblings by sysfs (same file); the clone is read
    # and agrees.
    r, doc = run_check(lab, devices=[d0.b, d1.b, clone, d0.a, d1.a])
    vg = vg_of(doc, "vg0")
    assert r.returncode == 0 and vg["state"] == "in_sync" and vg["reason"] is None
    rows = [(p["uuid"], p["device"], p["state"], p["seqno"]) for p in vg["pvs"]]
    u0, u1 = uuid_of(d0), uuid_of(d1)
    assert rows[0] == (u0, d0.b, "ok", 3)
    assert sorted(rows[1:3]) == sorted([(u0, clone, "duplicate", 3), (u0, d0.a, "duplicate", 3)])
    assert rows[3:] == [(u1, d1.b, "ok", 3), (u1, d1.a, "duplicate", 3)]
    # Label and header in one read at each hint; the label area of every
    # other named device, then the header of each one that carries a wanted
    # PV (the clone and node A's paths); one text for the one copy.
    assert doc["reads"] <= 2 + 3 * 2 + 1, doc["reads"]


def test_stale_replica_instead_of_the_real_pv_is_cache_ahead(lab):
    """Only the copy is presented to B, and B cached the newer version: the
    disk this node sees is older than its cache."""
    d0 = lab.add_disk("d0")
    make_vg(lab, "vg0", [d0])
    old = snapshot(lab, d0, "d0-before")                     # seqno 2
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")    # seqno 3
    lab.b.vgcfgbackup("vg0")
    lab.detach(d0, "b")
    replica = attach_copy(lab, old, d0)

    r, doc = run_check(lab, devices=[replica])
    vg = vg_of(doc, "vg0")
    assert r.returncode == 2 and vg["state"] == "cache_ahead" and vg["reason"] == "seqno"
    assert (vg["cache"]["seqno"], vg["disk"]["seqno"]) == (3, 2)
    assert_pvs(vg, [(d0, replica, "ok", 2)])
    assert [(c["type"], c["name"]) for c in vg["changes"]] == [("lv_removed", "lv2")]
    assert commands(vg)[0] is None and "replica" in vg["actions"][0]["reason"]


# ------------------------------------------------------------ outdated PVs

def test_outdated_pv_after_vgreduce_removemissing(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")                                  # seqno 2, both PVs
    u1 = uuid_of(d1)
    lab.detach(d1, "a")                                       # node A lost its path to d1
    lab.a.lvm("vgreduce", "--removemissing", "vg0")           # seqno 3 on d0 only
    assert lab.a.vgs_truth("vg0")["seqno"] == 3

    # d1 is still visible to B and holds seqno 2: LVM calls it outdated.
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and vg["state"] == "drift" and vg["reason"] == "seqno"
    assert_pvs(vg, [(d0, d0.b, "ok", 3), (d1, d1.b, "outdated", 2)])
    assert change_types(vg) == ["pv_removed"]
    (w,) = doc["warnings"]
    assert w["where"] == d1.b and w["vg"] == "vg0" and u1 in w["message"]
    cleanup = vg["actions"][-1]
    assert cleanup["command"] is None and "vgck --updatemetadata vg0" in cleanup["reason"]
    assert u1 in cleanup["reason"]

    # The refresh, run as a script would: in sync, the PV still outdated.
    run_actions(vg, lab.b.env)      # as node B, as a failover script would
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 0 and vg["state"] == "in_sync" and vg["cache"]["seqno"] == 3
    assert_pvs(vg, [(d0, d0.b, "ok", 3), (d1, d1.b, "outdated", 2)])
    assert vg["pvs"][1]["hint"] is None
    (w,) = doc["warnings"]
    assert w["where"] == d1.b
    assert [a["command"] for a in vg["actions"]] == [None]

    # The owner, seeing the PV again, cleans it up: vgck commits the VG once
    # more (seqno 4), so B drifts, then its refresh clears everything.
    lab.reattach(d1, "a")
    lab.a.lvm("vgck", "--updatemetadata", "vg0")
    assert lab.a.vgs_truth("vg0")["seqno"] == 4
    assert pv_layout(d1.image)["mdas"][0]["orphan"]
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and vg["state"] == "drift" and doc["warnings"] == []
    assert_pvs(vg, [(d0, d0.b, "ok", 4)])
    run_actions(vg, lab.b.env)      # as node B, as a failover script would
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"} and doc["warnings"] == []
    assert_pvs(vg, [(d0, d0.b, "ok", 4)])
    assert vg["actions"] == []


def test_outdated_pv_is_not_a_reason_to_wait(lab):
    """Before this change the same disks read `inconsistent` ("let the
    writing node finish"), which never clears by waiting, and `in_sync` once
    refreshed.  Now the same disks give the same safety verdict before and
    after the refresh: go (after refreshing)."""
    d0, d1, d2 = lab.add_disk("d0"), lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg0", [d0, d1, d2])
    lab.b.vgcfgbackup("vg0")
    lab.detach(d2, "a")
    lab.a.lvm("vgreduce", "--removemissing", "vg0")
    r, doc = run_check(lab)
    assert r.returncode == 1 and states(doc) == {"vg0": "drift"}
    assert [p["state"] for p in vg_of(doc, "vg0")["pvs"]] == ["ok", "ok", "outdated"]
    lab.b.vgcfgbackup("vg0")
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}
    assert [p["state"] for p in vg_of(doc, "vg0")["pvs"]] == ["ok", "ok", "outdated"]
