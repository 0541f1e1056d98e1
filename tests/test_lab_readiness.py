"""Failover readiness through `vgdrift check`, against real LVM2 in the lab.

Node A changes the VG; `vgdrift check` runs as node B (its cache, its loops,
`--lvm-system-dir` = B's LVM_SYSTEM_DIR, tests/test_lab_check.py's
run_check).  Node B's own LVM is the judge of what it would see: `lvm pvs
--config backup/backup=0` under B's LVM_SYSTEM_DIR (lab.node_sees), which
leaves its backup alone; `vgchange -ay` for what it can activate and
`vgchange -aay -vv` for what it would autoactivate.  Each test asserts
that vgdrift's verdict matches, then runs the actions as a failover script
does (every non-null command, in order, `sh -c`, as node B) and checks
again.

The lab has no device-mapper: the LVM commands the actions name run
through wrappers that add `--driverloaded n`, as tests/lab.py does.
"""

from helpers import free_port
from lab import (
    allow_autoactivation,
    devices_file,
    lvm_systemid,
    lvmdevices,
    make_vg,
    node_sees,
    pv_layout,
    set_lvmlocal,
    would_autoactivate,
)
from lab import run_actions_as_b as run_actions
from test_lab_check import run_check, states, vg_of
from test_lab_serve import serve  # noqa: F401  (the fixture)

AS_A = ("--config", 'global/system_id_source="lvmlocal" local/system_id="node_a"')


def uuid_of(disk):
    return pv_layout(disk.image)["pv_uuid"]



def b_can_activate(lab, vg):
    """Whether node B's LVM activates the VG (backup untouched)."""
    r = lab.b.lvm("vgchange", "-ay", "--config", "backup/backup=0", vg, check=False)
    return r.returncode == 0


def commands(vg):
    return [a["command"] for a in vg["actions"]]


# ------------------------------------------------------------ devices file

def test_devices_file_blocks_a_new_pv_until_the_actions_add_it(lab, tmp_path):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1])
    set_lvmlocal(lab.b, "devices {\n    use_devicesfile = 1\n}\n")
    lvmdevices(lab.b, "--adddev", d1.b)
    lab.b.vgcfgbackup("vg1")
    # B's LVM uses a devices file: its backup carries node-local device IDs,
    # which are not a difference from the disk (this was a `conflict`).
    assert "device_id" in lab.b.read_backup("vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 0 and vg["state"] == "in_sync", vg
    assert doc["lvm"]["use_devicesfile"] is True and doc["lvm"]["devices_file"] == str(devices_file(lab.b))

    lab.a.lvm("pvcreate", d2.a)
    lab.a.lvm("vgextend", "vg1", d2.a)
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 2 and (vg["state"], vg["reason"]) == ("blocked", "devices_file")
    assert [(b["reason"], b["pv"], b["device"]) for b in vg["blockers"]] == [("devices_file", uuid_of(d2), d2.b)]
    assert [c["type"] for c in vg["changes"]] == ["pv_added"]
    assert commands(vg) == [f"lvm lvmdevices --adddev {d2.b}", "vgcfgbackup vg1"]
    # B's own LVM agrees: it does not see the new PV.
    seen = node_sees(lab.b)
    assert uuid_of(d1) in seen and uuid_of(d2) not in seen

    run_actions(lab, tmp_path, vg)
    assert uuid_of(d2) in node_sees(lab.b)
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 0 and vg["state"] == "in_sync" and vg["blockers"] == [], vg


def test_no_devices_file_no_adddev_whatever_use_devicesfile_says(lab, tmp_path):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1])
    lab.b.vgcfgbackup("vg1")
    # Enabled, but no file: LVM falls back to the filters, and `lvmdevices
    # --adddev` would create a file listing that one device.
    set_lvmlocal(lab.b, "devices {\n    use_devicesfile = 1\n}\n")
    lab.a.lvm("pvcreate", d2.a)
    lab.a.lvm("vgextend", "vg1", d2.a)
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 1 and vg["state"] == "drift" and doc["lvm"]["devices_file"] is None
    assert commands(vg) == ["vgcfgbackup vg1"]
    assert {uuid_of(d1), uuid_of(d2)} <= set(node_sees(lab.b))
    run_actions(lab, tmp_path, vg)
    assert not devices_file(lab.b).exists()
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}


# ------------------------------------------------------------ filter

def test_filter_rejecting_the_new_pv_blocks(lab, tmp_path):
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1])
    lab.b.vgcfgbackup("vg1")
    set_lvmlocal(lab.b, 'devices {\n    filter = [ "r|^%s$|" ]\n}\n' % d2.b)
    lab.a.lvm("pvcreate", d2.a)
    lab.a.lvm("vgextend", "vg1", d2.a)
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 2 and (vg["state"], vg["reason"]) == ("blocked", "filter")
    (b,) = vg["blockers"]
    assert (b["pv"], b["device"]) == (uuid_of(d2), d2.b) and f"r|^{d2.b}$|" in b["message"]
    # No command fixes a filter: advice first, then the refresh.
    assert vg["actions"][0]["command"] is None and vg["actions"][0]["reason"].startswith("do not activate")
    assert commands(vg)[1:] == ["vgcfgbackup vg1"]
    seen = node_sees(lab.b)
    assert uuid_of(d1) in seen and uuid_of(d2) not in seen
    # Lifting the filter is the admin's decision; then B sees it.
    set_lvmlocal(lab.b, "")
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}
    assert uuid_of(d2) in node_sees(lab.b)


# ------------------------------------------------------------ system ID

def test_vg_owned_by_a_is_in_sync_on_b_and_refreshed_with_foreign(lab, tmp_path):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    lab.a.lvm("vgchange", *AS_A, "-y", "--systemid", "node_a", "vg1")
    set_lvmlocal(lab.b, 'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "node_b"\n}\n')
    assert lvm_systemid(lab.b) == "node_b"
    lab.b.lvm("vgcfgbackup", "--foreign", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 0 and vg["state"] == "in_sync", vg
    assert vg["owner"] == {"system_id": "node_a", "local_system_id": "node_b", "this_node": False}
    assert vg["autoactivation"] is False
    assert doc["lvm"]["system_id_source"] == "lvmlocal" and doc["lvm"]["local_system_id"] == "node_b"

    lab.a.lvm("lvcreate", *AS_A, "-L", "4m", "-n", "lv2", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 1 and vg["state"] == "drift"
    assert commands(vg) == ["vgcfgbackup --foreign vg1"]
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}


def test_vg_this_node_owns_is_refreshed_without_foreign(lab, tmp_path):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    as_b = ("--config", 'global/system_id_source="lvmlocal" local/system_id="node_b"')
    lab.a.lvm("vgchange", *as_b, "-y", "--systemid", "node_b", "vg1")
    set_lvmlocal(lab.b, 'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "node_b"\n}\n')
    lab.b.vgcfgbackup("vg1")
    lab.a.lvm("lvcreate", *as_b, "-L", "4m", "-n", "lv2", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 1 and vg["owner"]["this_node"] is True
    assert commands(vg) == ["vgcfgbackup vg1"]
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}


def test_no_local_system_id_cannot_take_a_system_id_vg_over(lab):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    lab.a.lvm("vgchange", *AS_A, "-y", "--systemid", "node_a", "vg1")
    set_lvmlocal(lab.b, 'global {\n system_id_source = "none"\n}\n')
    assert lvm_systemid(lab.b) == ""
    lab.b.lvm("vgcfgbackup", "--foreign", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 2 and (vg["state"], vg["reason"]) == ("blocked", "system_id")
    assert vg["owner"] == {"system_id": "node_a", "local_system_id": "", "this_node": False}
    (a,) = vg["actions"]                 # advice only: no command gives a node a system ID
    assert a["command"] is None and "system_id_source" in a["reason"]
    assert not b_can_activate(lab, "vg1")
    # A local system ID is what takeover needs: then the VG is in sync.
    set_lvmlocal(lab.b, 'global {\n system_id_source = "lvmlocal"\n}\nlocal {\n system_id = "node_b"\n}\n')
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}


# ------------------------------------------------------------ vgexport

def test_exported_vg_is_blocked_until_imported(lab, tmp_path):
    d1 = lab.add_disk("d1")
    make_vg(lab, "vg1", [d1])
    lab.b.vgcfgbackup("vg1")
    lab.a.lvm("vgexport", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 2 and (vg["state"], vg["reason"]) == ("blocked", "exported")
    assert not b_can_activate(lab, "vg1")
    assert vg["actions"][0]["command"] is None and "vgimport" in vg["actions"][0]["reason"]
    # The refresh alone does not clear it.
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert (vg["state"], vg["reason"]) == ("blocked", "exported") and vg["changes"] == []
    lab.a.lvm("vgimport", "vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 1 and vg["state"] == "drift"
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}
    assert b_can_activate(lab, "vg1")


# ------------------------------------------------------------ autoactivation

def test_autoactivation_on_then_off_with_setautoactivation(lab, tmp_path):
    d1 = lab.add_disk("d1")
    allow_autoactivation(lab.b)
    make_vg(lab, "vg1", [d1])
    lab.b.vgcfgbackup("vg1")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert would_autoactivate(lab.b, "vg1") == ["vg1/lv1"]
    assert r.returncode == 0 and vg["state"] == "in_sync" and vg["autoactivation"] is True
    (a,) = vg["actions"]
    assert a["command"] is None and a["reason"].endswith("vgchange --setautoactivation n vg1")
    assert [w["vg"] for w in doc["warnings"]] == ["vg1"]
    # Run where the VG is owned (node A here), never by a script on B.
    lab.a.lvm("vgchange", "--setautoactivation", "n", "vg1")
    assert would_autoactivate(lab.b, "vg1") == []
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg1")
    assert r.returncode == 1 and vg["autoactivation"] is False and doc["warnings"] == []
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg1": "in_sync"}


def test_autoactivation_excluded_by_the_volume_list(lab):
    d1 = lab.add_disk("d1")
    allow_autoactivation(lab.b)
    make_vg(lab, "vg1", [d1])
    lab.b.vgcfgbackup("vg1")
    for text, expect in (('[ "other", "vg1/nope" ]', False), ('[ "vg1/lv1" ]', True), ("[ ]", False)):
        set_lvmlocal(lab.b, f"activation {{\n auto_activation_volume_list = {text}\n}}\n")
        r, doc = run_check(lab)
        vg = vg_of(doc, "vg1")
        assert vg["autoactivation"] is expect is bool(would_autoactivate(lab.b, "vg1")), text
        assert r.returncode == 0 and vg["state"] == "in_sync"


# ------------------------------------------------------------ serve

def test_serve_exports_readiness_and_follows_config_changes(lab, serve, tmp_path):  # noqa: F811
    d1, d2 = lab.add_disk("d1"), lab.add_disk("d2")
    make_vg(lab, "vg1", [d1])
    set_lvmlocal(lab.b, "devices {\n    use_devicesfile = 1\n}\n")
    lvmdevices(lab.b, "--adddev", d1.b)
    lab.b.vgcfgbackup("vg1")
    lab.a.lvm("pvcreate", d2.a)
    lab.a.lvm("vgextend", "vg1", d2.a)
    config, port = tmp_path / "serve.yml", free_port()
    # No cache_dirs: the default is backup_dir of B's lvm.conf, its backup dir.
    config.write_text("lvm_system_dir: %s\ndevices: [%s]\nscan: {interval: 1s, timeout: 2s}\n"
                      "web: {listen_address: '127.0.0.1:%d'}\n"
                      % (lab.b.system_dir, ", ".join(lab.b.devices), port))
    s = serve(config_file=config, port=port)
    s.wait_ready()
    m = s.wait_for(lambda m: m.state("vg1") == "blocked", 20, "vg1 blocked")
    assert {r: m.get1("vgdrift_vg_blocked", vg="vg1", reason=r)
            for r in ("devices_file", "filter", "system_id", "exported")} == \
        {"devices_file": 1, "filter": 0, "system_id": 0, "exported": 0}
    assert m.get1("vgdrift_vg_autoactivation", vg="vg1") == 0
    assert m.get1("vgdrift_vg_owned", vg="vg1") == 0
    assert m.get1("vgdrift_node_lvm_info", use_devicesfile="1", system_id_source="none",
                  local_system_id="") == 1
    # The devices file is read on every scan.
    lvmdevices(lab.b, "--adddev", d2.b)
    m = s.wait_for(lambda m: m.state("vg1") == "drift", 20, "vg1 drift once d2 is listed")
    assert m.get1("vgdrift_vg_blocked", vg="vg1", reason="devices_file") == 0
    # lvmlocal.conf changed: read again.
    set_lvmlocal(lab.b, 'devices {\n    use_devicesfile = 1\n}\nglobal {\n system_id_source = "lvmlocal"\n}\n'
                        'local {\n system_id = "node_b"\n}\n')
    s.wait_for(lambda m: m.get1("vgdrift_node_lvm_info", use_devicesfile="1", system_id_source="lvmlocal",
                                local_system_id="node_b") == 1, 20, "node_lvm_info follows lvmlocal.conf")

