"""`changes` and `actions` against real LVM2 in the two-node lab.

Node A changes the VG with real LVM commands; node B runs `vgdrift check`
(tests/test_lab_check.py's run_check) and then does what a failover script
does: runs every non-null `actions[].command` in order with `sh -c`, as
node B (its LVM_SYSTEM_DIR), stopping at the first failure.  The end state
is checked again with vgdrift, and this node's backups are followed: a copy
that may be the only one of newer metadata must survive outside the cache
directory.

The lab has no device-mapper, so the LVM commands the actions name run
through tiny wrappers that add `--driverloaded n` (as tests/lab.py does for
its own commands); nothing else about them changes.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from lab import MIB, action_env, make_vg
from lab import run_actions_as_b as run_actions
from test_lab_check import EXPORTER, change_types, read_image, run_check, states, vg_of, write_image

README = Path(__file__).resolve().parent.parent / "README.md"

# vgchange --systemid needs a local system ID: node A claims "hosta" for
# the command only; node B gets "hostb" in its lvm.conf (give_system_id).
AS_HOSTA = ("--config", 'global/system_id_source="lvmlocal" local/system_id="hosta"')


# ------------------------------------------------------------------ helpers


def give_system_id(lab, node, system_id):
    """`system_id_source = "lvmlocal"` with local/system_id in the node's
    own lvm.conf (rewritten by the lab when disks come and go: call this
    after the last attach)."""
    conf = node.system_dir / "lvm.conf"
    text = conf.read_text().replace("global {\n", 'global {\n    system_id_source = "lvmlocal"\n', 1)
    conf.write_text(text + f'local {{\n    system_id = "{system_id}"\n}}\n')


def saved_dir(lab):
    return lab.b.backup_dir.parent / "vgdrift-saved"


def cache_files(lab):
    return sorted(p.name for p in lab.b.backup_dir.iterdir())


# ---------------------------------------------------------------- system ID

def test_system_id_change_is_one_change_and_foreign_refresh_clears_it(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1], lvs=("lv1", "lv2"))
    lab.b.vgcfgbackup("vg0")
    give_system_id(lab, lab.b, "hostb")
    lab.a.lvm("vgchange", *AS_HOSTA, "-y", "--systemid", "hosta", "vg0")
    assert 'flags = ["WRITE_LOCKED"]' in read_image(d0, 0, MIB).decode("latin-1")

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and vg["state"] == "drift" and vg["disk"]["system_id"] == "hosta"
    (ch,) = vg["changes"]          # not "every LV became read-only", nor a VG status change
    assert (ch["type"], ch["old"], ch["new"]) == ("system_id_changed", "", "hosta")
    path = lab.b.backup_path("vg0")
    # B's cache is its LVM's backup_dir: no -f.
    assert [a["command"] for a in vg["actions"]] == ["vgcfgbackup --foreign vg0"]

    # Why --foreign: plain vgcfgbackup cannot read a VG another host owns.
    before = path.read_bytes()
    plain = lab.b.lvm("vgcfgbackup", "-f", path, "vg0", check=False)
    assert plain.returncode != 0 and "Cannot access VG vg0 with system ID hosta" in plain.stderr
    assert path.read_bytes() == before

    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}


def test_a_vg_this_node_owns_is_refreshed_without_foreign(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    give_system_id(lab, lab.b, "hostb")
    # Node A acts as hostb: B owns the VG now.
    as_hostb = ("--config", 'global/system_id_source="lvmlocal" local/system_id="hostb"')
    lab.a.lvm("vgchange", *as_hostb, "-y", "--systemid", "hostb", "vg0")
    lab.a.lvm("lvcreate", *as_hostb, "-L", "4m", "-n", "lv2", "vg0")

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and change_types(vg) == ["lv_added", "system_id_changed"]
    (cmd,) = [a["command"] for a in vg["actions"]]
    # vgdrift knows B's system ID (its lvm.conf): the VG is B's own.
    assert cmd == "vgcfgbackup vg0" and vg["owner"]["this_node"] is True
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}


def _readme_failover_script():
    text = README.read_text()
    section = text[text.index("### In a failover script"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def run_failover_script(lab, tmp_path, vg_name):
    """The README's failover script, as node B, with `vgdrift` pointed at
    B's cache and loops, and its JSON and log kept in tmp_path."""
    out, log = tmp_path / "vgdrift.json", tmp_path / "failover.log"
    script = _readme_failover_script().replace("/run/vgdrift.json", str(out))
    script = re.sub(r"^VG=.*$", f"VG={shlex.quote(vg_name)}", script, count=1, flags=re.M)
    bin_dir = tmp_path / "bin"
    env = action_env(lab.b, bin_dir)
    devices = " ".join(f"--devices {shlex.quote(d)}" for d in lab.b.devices)
    (bin_dir / "vgdrift").write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(EXPORTER))} exec {shlex.quote(sys.executable)} -m vgdrift "
        f'"$@" --cache-dir {shlex.quote(str(lab.b.backup_dir))} {devices}\n')
    (bin_dir / "logger").write_text(f'#!/bin/sh\n{{ echo "$@"; [ -t 0 ] || cat; }} >> {shlex.quote(str(log))}\n')
    for f in ("vgdrift", "logger"):
        (bin_dir / f).chmod(0o755)
    path = tmp_path / "failover.sh"
    path.write_text(script)
    r = subprocess.run(["sh", str(path)], env=env, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    return r, (log.read_text() if log.exists() else "")


def test_readme_failover_script_takes_over_a_system_id_vg(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    give_system_id(lab, lab.b, "hostb")
    lab.a.lvm("vgchange", *AS_HOSTA, "-y", "--systemid", "hosta", "vg0")
    lab.a.lvm("lvcreate", *AS_HOSTA, "-L", "4m", "-n", "lv2", "vg0")      # and a change B has not seen

    r, log = run_failover_script(lab, tmp_path, "vg0")
    assert r.returncode == 0, (r.stdout, r.stderr, log)
    assert "drifted" in log
    # B took the VG over (its system ID on disk), and its cache follows.
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}
    assert vg_of(doc, "vg0")["disk"]["system_id"] == "hostb"


def test_readme_failover_script_without_system_id(lab, tmp_path):
    (d0,) = make_vg(lab, "vg0", [lab.add_disk("d0")])
    lab.b.vgcfgbackup("vg0")
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    r, log = run_failover_script(lab, tmp_path, "vg0")
    assert r.returncode == 0, (r.stdout, r.stderr, log)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}


def test_readme_failover_script_stops_on_an_unsafe_vg(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    before = lab.b.read_backup("vg0")
    lab.detach(d1, "b")
    r, log = run_failover_script(lab, tmp_path, "vg0")
    assert r.returncode == 1 and "unsafe (exit 2)" in log and "vg0: partial: do not activate" in log
    assert lab.b.read_backup("vg0") == before


# -------------------------------------------------------------- extent size

def test_extent_size_change_is_not_a_resize(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    lab.a.lvm("vgchange", "-s", "2m", "vg0")

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and vg["state"] == "drift"
    (ch,) = vg["changes"]
    assert (ch["type"], ch["old"], ch["new"]) == ("extent_size_changed", 4 * MIB, 2 * MIB)
    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}


# ------------------------------------------------ a backup taken with a PV gone

def test_backup_written_while_a_pv_was_missing_is_in_sync_when_it_is_back(lab):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1], lvs=())
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv0", "vg0", d0.a)
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv1", "vg0", d1.a)
    lab.b.vgcfgbackup("vg0")
    lab.detach(d1, "b")
    path = lab.b.backup_path("vg0")
    lab.b.lvm("vgcfgbackup", "-f", path, "vg0")        # plain vgcfgbackup refuses with a PV missing
    text = path.read_text()
    assert 'flags = ["MISSING"]' in text and 'device = "[unknown]"' in text
    r, doc = run_check(lab)
    assert r.returncode == 2 and states(doc) == {"vg0": "partial"}

    lab.reattach(d1, "b")
    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 0 and vg["state"] == "in_sync", vg
    assert vg["changes"] == [] and vg["actions"] == []
    assert vg["cache"]["seqno"] == vg["disk"]["seqno"]


# ------------------------------------------------------------------ VG id

def test_vgchange_uuid_says_the_id_changed_and_the_actions_clear_it(lab, tmp_path):
    (d0,) = make_vg(lab, "vg0", [lab.add_disk("d0")])
    lab.b.vgcfgbackup("vg0")
    old_text = lab.b.read_backup("vg0")
    old_id = lab.a.vgs_truth("vg0")["uuid"]
    lab.a.lvm("vgchange", "--uuid", "vg0")
    new_id = lab.a.vgs_truth("vg0")["uuid"]

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 2 and vg["state"] == "uuid_mismatch"
    (ch,) = vg["changes"]
    assert (ch["old"], ch["new"]) == (old_id, new_id)
    assert "id changed" in ch["message"]
    assert not any("it was recreated" in a["reason"] for a in vg["actions"])

    run_actions(lab, tmp_path, vg)
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"} and doc["warnings"] == []
    assert vg_of(doc, "vg0")["uuid"] == new_id
    (kept,) = saved_dir(lab).iterdir()
    assert kept.read_text() == old_text and old_id in kept.name


def test_uuid_mismatch_moves_the_old_backup_out_then_refreshes(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    lab.b.vgcfgbackup("vg0")
    old_text = lab.b.read_backup("vg0")
    lab.a.lvm("vgremove", "-f", "vg0")
    lab.a.lvm("vgcreate", "vg0", d0.a, d1.a)
    new_id = lab.a.vgs_truth("vg0")["uuid"]

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 2 and vg["state"] == "uuid_mismatch"
    ran = run_actions(lab, tmp_path, vg)
    assert ran[0].split(" && ")[1].startswith("mv ") and ran[-1].startswith("vgcfgbackup ")

    # The refreshed backup is not removed afterwards; the old one is kept
    # where the cache reader does not see it as a second VG.
    assert cache_files(lab) == ["vg0"]
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"} and doc["warnings"] == []
    assert vg_of(doc, "vg0")["uuid"] == new_id
    (kept,) = saved_dir(lab).iterdir()
    assert kept.read_text() == old_text


# ------------------------------------------------------------- cache_ahead

def test_cache_ahead_saves_this_nodes_copy_before_accepting_the_disks(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0, d1])
    old = {d.name: read_image(d, 0, MIB) for d in (d0, d1)}
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")
    lab.b.vgcfgbackup("vg0")
    newer = lab.b.read_backup("vg0")          # seqno 3: after the rollback, the only copy
    for d in (d0, d1):
        write_image(d, 0, old[d.name])

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 2 and vg["state"] == "cache_ahead"
    ran = run_actions(lab, tmp_path, vg)
    assert ran[0].split(" && ")[1].startswith("cp -p ")     # before anything that writes the cache

    (kept,) = saved_dir(lab).iterdir()
    assert kept.read_text() == newer and "seqno3" in kept.name
    assert kept.parent != lab.b.backup_dir
    # The script accepted the disks (the last action): in sync with seqno 2.
    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg0": "in_sync"}
    assert vg_of(doc, "vg0")["cache"]["seqno"] == 2


# ------------------------------------------------------------------ drift

def test_drift_with_rename_and_new_pv_actions_in_order(lab, tmp_path):
    d0, d1 = lab.add_disk("d0"), lab.add_disk("d1")
    make_vg(lab, "vg0", [d0])
    lab.b.vgcfgbackup("vg0")
    lab.a.lvm("pvcreate", d1.a)
    lab.a.lvm("vgextend", "vg0", d1.a)
    lab.a.lvm("vgrename", "vg0", "vg_new+1.x")

    r, doc = run_check(lab)
    vg = vg_of(doc, "vg0")
    assert r.returncode == 1 and sorted(change_types(vg)) == ["pv_added", "vg_renamed"]
    ran = run_actions(lab, tmp_path, vg)
    assert len(ran) == 2 and not any("lvmdevices" in c for c in ran)
    # B uses no devices file: no step created one.
    assert not (lab.b.system_dir / "devices" / "system.devices").exists()

    r, doc = run_check(lab)
    assert r.returncode == 0 and states(doc) == {"vg_new+1.x": "in_sync"} and doc["warnings"] == []
    assert cache_files(lab) == ["vg_new+1.x"]


# ------------------------------------------- a cache directory of its own

def check_dir(lab, cache_dir):
    r = subprocess.run([sys.executable, "-m", "vgdrift", "check", "--cache-dir", str(cache_dir), "--format", "json",
                        *[a for d in lab.b.devices for a in ("--devices", d)]],
                       capture_output=True, text=True, timeout=60, env=dict(lab.b.env, PYTHONPATH=str(EXPORTER)))
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def test_refresh_lands_in_a_cache_dir_that_is_not_lvms(lab, tmp_path):
    """--cache-dir elsewhere (spaces, a %): plain vgcfgbackup would write
    LVM's backup_dir and leave this one stale; the action names the file,
    shell-quoted, with the % doubled for LVM's -f template."""
    (d0,) = make_vg(lab, "vg0", [lab.add_disk("d0")])
    lab.b.vgcfgbackup("vg0")
    cache_dir = tmp_path / "my cache 100%"
    cache_dir.mkdir()
    (cache_dir / "vg0").write_text(lab.b.read_backup("vg0"))
    lvm_own = lab.b.read_backup("vg0")
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", "vg0")

    code, doc = check_dir(lab, cache_dir)
    (vg,) = doc["vgs"]
    assert code == 1 and vg["state"] == "drift"
    (cmd,) = [a["command"] for a in vg["actions"]]
    assert shlex.split(cmd) == ["vgcfgbackup", "-f", f"{tmp_path}/my cache 100%%/vg0", "vg0"]
    run_actions(lab, tmp_path, vg)
    code, doc = check_dir(lab, cache_dir)
    assert code == 0 and [v["state"] for v in doc["vgs"]] == ["in_sync"]
    assert sorted(p.name for p in cache_dir.iterdir()) == ["vg0"]
    assert lab.b.read_backup("vg0") == lvm_own          # LVM's own backup dir was not the target
