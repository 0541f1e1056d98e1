"""The actions' contract with failover scripts: every state has its own
branch; commands are shell-quoted; a system-ID VG is read with --foreign;
the refresh writes the file vgdrift reads; nothing overwrites or removes
this node's backup before it is saved when it may be the only copy of
newer metadata.  (tests/test_lab_actions.py runs them on real LVM.)"""

import os
import shlex
import subprocess

import pytest

from test_changes import LOCKED, PV0, PV1, VGID, lvm_text
from vgdrift import model as m
from vgdrift.model import FOUND
from vgdrift.textmeta import parse_vg
from vgdrift.verdict.actions import BRANCHES, actions, readiness_notes, saved_dir, saved_path
from vgdrift.verdict.readiness import Blocker, Note, Readiness, adddev_command
from vgdrift.verdict.views import PVView

DEFAULT = "/etc/lvm/backup/vg0"
OTHER_ID = "NEWNEW-Zju9-gRj3-QWr9-2mGF-F26z-PY1OXP"


def meta(**kw):
    return parse_vg(lvm_text(**kw), "test")


CACHED = meta(seqno=4)


def views(copy=None):
    return {PV0: PVView(PV0, FOUND, "/dev/sdb", copy=copy), PV1: PVView(PV1, FOUND, "/dev/sdc", copy=copy)}


def run(state, disk, path=DEFAULT, cache=CACHED, chg=()):
    return actions(state, cache, path, disk, views(disk), chg)


def cmds(acts):
    return [a.command for a in acts if a.command is not None]


# Disks as each state would show them.
SCENES = {
    m.VGState.IN_SYNC: CACHED,
    m.VGState.DRIFT: meta(seqno=5),
    m.VGState.CACHE_AHEAD: meta(seqno=3),
    m.VGState.CONFLICT: meta(seqno=4, lv_extents=2),
    m.VGState.UUID_MISMATCH: meta(seqno=1, vgid=OTHER_ID),
    m.VGState.PARTIAL: meta(seqno=4),
    m.VGState.BLOCKED: meta(seqno=6),
    m.VGState.MISSING: None,
    m.VGState.INCONSISTENT: meta(seqno=5),
    m.VGState.UNREADABLE: None,
    m.VGState.UNKNOWN: None,
}


def test_every_state_has_its_own_branch():
    assert set(BRANCHES) == set(m.VGState) == set(SCENES)
    assert len(set(BRANCHES.values())) == len(m.VGState), "two states share one branch"


@pytest.mark.parametrize("state", list(m.VGState))
def test_each_state_answers_for_itself(state):
    got = run(state, SCENES[state])
    assert run(state.value, SCENES[state]) == got        # the plain string works too
    if state == m.VGState.IN_SYNC:
        assert got == ()
    elif state == m.VGState.DRIFT:
        assert got[0].command is not None
    else:
        # An unsafe state starts with the advice not to activate.
        assert got[0].command is None and got[0].reason.startswith("do not activate")
    for other in m.VGState:
        if other != state and SCENES[other] is SCENES[state]:
            assert run(other, SCENES[state]) != got


def test_an_unknown_state_is_advice_not_another_states():
    (a,) = run("no_such_state", None)
    assert a.command is None and "no_such_state" in a.reason


@pytest.mark.parametrize("state", [m.VGState.CACHE_AHEAD, m.VGState.UUID_MISMATCH, m.VGState.DRIFT])
def test_a_disk_copy_missing_where_one_is_needed_is_advice(state):
    assert cmds(run(state, None)) == []


# ------------------------------------------------------------------ refresh

def test_refresh_in_lvms_default_directory_is_plain():
    assert cmds(run(m.DRIFT, meta(seqno=5))) == ["vgcfgbackup vg0"]


def test_refresh_elsewhere_names_the_file_and_quotes_it():
    path = "/srv/my backups/50%$(x)/vg0"
    (c,) = cmds(run(m.DRIFT, meta(seqno=5), path=path))
    # LVM expands -f as a printf template: % doubled.
    assert shlex.split(c) == ["vgcfgbackup", "-f", "/srv/my backups/50%%$(x)/vg0", "vg0"]


def test_system_id_vg_is_read_with_foreign():
    disk = meta(seqno=5, system_id="hosta", vg_access=('["RESIZEABLE", "READ"]', '["WRITE_LOCKED"]'),
                lvs=(("lv1", "hwNBwF-er2X-55Xd-5BoV-wPEE-I3bP-ngarkY", LOCKED),))
    (c,) = cmds(run(m.DRIFT, disk))
    assert c == "vgcfgbackup --foreign vg0"
    assert "hosta" in run(m.DRIFT, disk)[-1].reason
    # uuid_mismatch: the VG that now occupies the PVs decides.
    new = meta(seqno=1, vgid=OTHER_ID, system_id="hosta")
    assert cmds(run(m.UUID_MISMATCH, new))[-1] == "vgcfgbackup --foreign vg0"


def test_rename_refreshes_then_removes_the_old_name():
    c = cmds(run(m.DRIFT, meta(seqno=5, name="vgnew")))
    assert c == ["vgcfgbackup vgnew", "rm -f -- /etc/lvm/backup/vg0"]


def test_a_cache_file_not_named_after_its_vg_is_removed_after_the_refresh():
    c = cmds(run(m.DRIFT, meta(seqno=5), path="/etc/lvm/backup/vg0.copy"))
    assert c == ["vgcfgbackup vg0", "rm -f -- /etc/lvm/backup/vg0.copy"]


def test_a_new_pv_gets_no_devices_file_command_without_a_blocker():
    # Whether a devices file is in use is readiness's to say (a blocker);
    # drift alone never adds to one: with no file, that creates one
    # listing that device alone, hiding every other PV.
    disk = meta(seqno=5)
    chg = (m.Change("pv_added", "x", id=PV1, name="/dev/loop8"),)
    assert cmds(actions(m.DRIFT, CACHED, DEFAULT, disk, views(disk), chg)) == ["vgcfgbackup vg0"]


# ------------------------------------------------------------------ readiness

def ready(*blockers, this_node=None, system_id="", warnings=()):
    return Readiness(tuple(blockers), m.Owner(system_id, None if this_node is None else "me", this_node),
                     None, tuple(warnings))


def adddev(pv, dev):
    return Blocker(m.BlockReason.DEVICES_FILE, pv, dev, f"PV {pv} not listed", adddev_command(dev))


def test_blocked_runs_the_devices_file_fix_before_the_refresh():
    disk = meta(seqno=5)
    got = actions(m.BLOCKED, CACHED, DEFAULT, disk, views(disk), (),
                  ready=ready(adddev(PV1, "/dev/my disk")))
    assert cmds(got) == ["lvm lvmdevices --adddev '/dev/my disk'", "vgcfgbackup vg0"]
    assert got[0].reason == f"PV {PV1} not listed"


def test_blocked_in_sync_vg_gets_only_the_fix():
    got = actions(m.BLOCKED, CACHED, DEFAULT, CACHED, views(CACHED), (),
                  ready=ready(adddev(PV1, "/dev/sdc")))
    assert cmds(got) == ["lvm lvmdevices --adddev /dev/sdc"]


@pytest.mark.parametrize("reason", [m.BlockReason.FILTER, m.BlockReason.SYSTEM_ID, m.BlockReason.EXPORTED])
def test_blockers_without_a_command_are_advice_first(reason):
    disk = meta(seqno=5)
    b = Blocker(reason, None, None, "why")
    got = actions(m.BLOCKED, CACHED, DEFAULT, disk, views(disk), (), ready=ready(b))
    assert got[0] == m.Action(None, "do not activate: why")
    assert cmds(got) == ["vgcfgbackup vg0"]


@pytest.mark.parametrize("this_node,foreign", [(True, False), (False, True), (None, True)])
def test_foreign_only_for_a_vg_this_node_does_not_own(this_node, foreign):
    disk = meta(seqno=5, system_id="hosta", vg_access=('["RESIZEABLE", "READ"]', '["WRITE_LOCKED"]'),
                lvs=(("lv1", "hwNBwF-er2X-55Xd-5BoV-wPEE-I3bP-ngarkY", LOCKED),))
    got = actions(m.DRIFT, CACHED, DEFAULT, disk, views(disk), (),
                  ready=ready(this_node=this_node, system_id="hosta"))
    assert cmds(got) == ["vgcfgbackup --foreign vg0" if foreign else "vgcfgbackup vg0"]


def test_refresh_into_the_configured_backup_dir_is_plain():
    disk = meta(seqno=5)
    path = "/srv/lvm/backup/vg0"
    assert cmds(actions(m.DRIFT, CACHED, path, disk, views(disk), (), backup_dir="/srv/lvm/backup")) \
        == ["vgcfgbackup vg0"]
    assert cmds(actions(m.DRIFT, CACHED, DEFAULT, disk, views(disk), (), backup_dir="/srv/lvm/backup")) \
        == ["vgcfgbackup -f /etc/lvm/backup/vg0 vg0"]


def test_readiness_warnings_are_advice_never_commands():
    n = Note("VG vg0: this node's LVM would activate it by itself at boot; run on the node that owns it",
             "vgchange --setautoactivation n vg0")
    (a,) = readiness_notes(ready(warnings=(n,)))
    assert a.command is None and a.reason.endswith(": vgchange --setautoactivation n vg0")


# ---------------------------------------------------------- newer copies kept

def _writes(command, cache_path):
    """Does this command write, move or remove the cache file?"""
    words = shlex.split(command)
    if words[0] == "vgcfgbackup":
        target = words[words.index("-f") + 1] if "-f" in words else os.path.join("/etc/lvm/backup", words[-1])
        return os.path.normpath(target.replace("%%", "%")) == os.path.normpath(cache_path)
    return cache_path in words and ("rm" in words or "mv" in words)


@pytest.mark.parametrize("path", [DEFAULT, "/var/tmp/cache dir/vg0"])
@pytest.mark.parametrize("state", [m.VGState.CACHE_AHEAD, m.VGState.CONFLICT, m.VGState.UUID_MISMATCH])
def test_this_nodes_copy_is_saved_outside_the_cache_dir_first(state, path):
    c = cmds(run(state, SCENES[state], path=path))
    save = c[0]
    assert save.startswith(f"mkdir -p -m 0700 -- {shlex.quote(saved_dir(path))} && ")
    dest = saved_path(path, CACHED)
    assert shlex.split(save.split(" && ")[1])[-2:] == [path, dest]
    assert os.path.dirname(dest) != os.path.dirname(path)
    # The save is the first command; later ones may then write the file.
    assert not _writes(save.split(" && ")[0], path)
    assert any(_writes(x, path) for x in c[1:]) == (state != m.VGState.CONFLICT)
    if state == m.VGState.UUID_MISMATCH:
        assert " mv --backup=numbered " in f" {save.split(' && ')[1]}"     # out of the cache dir
    else:
        assert save.split(" && ")[1].startswith("cp -p --backup=numbered ")


def test_saved_names_differ_per_version():
    assert saved_path(DEFAULT, CACHED) == f"/etc/lvm/vgdrift-saved/vg0_{VGID}_seqno4"
    assert saved_path(DEFAULT, meta(seqno=5)) != saved_path(DEFAULT, CACHED)


def test_inconsistent_and_partial_run_nothing():
    # A repair writes the shared metadata: the owner's job, not a blind step.
    assert cmds(run(m.INCONSISTENT, SCENES[m.INCONSISTENT])) == []
    assert "vgck --updatemetadata vg0" in run(m.INCONSISTENT, SCENES[m.INCONSISTENT])[1].reason
    assert cmds(run(m.PARTIAL, SCENES[m.PARTIAL])) == []
    assert cmds(run(m.MISSING, None)) == []


def test_cache_ahead_script_keeps_the_newer_copy(tmp_path):
    """The commands run in order by sh, with stand-ins for LVM that write
    what vgcfgbackup -f would: the saved copy is this node's old file."""
    cache_dir = tmp_path / "cache dir"
    cache_dir.mkdir()
    path = cache_dir / "vg0"
    path.write_text(lvm_text(seqno=4))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vgcfgbackup").write_text('#!/bin/sh\nwhile [ "$1" != -f ]; do shift; done\n'
                                         'printf "seqno = 3\\n" > "$2"\n')
    (bin_dir / "vgcfgrestore").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    for c in cmds(run(m.CACHE_AHEAD, SCENES[m.CACHE_AHEAD], path=str(path))):
        subprocess.run(["sh", "-c", c], env=env, check=True)
    saved = saved_path(str(path), CACHED)
    assert open(saved).read() == lvm_text(seqno=4)
    assert path.read_text() == "seqno = 3\n"
    assert os.stat(saved_dir(str(path))).st_mode & 0o777 == 0o700     # like LVM's backup dir
    # Run again: the first save is kept aside, not overwritten.
    for c in cmds(run(m.CACHE_AHEAD, SCENES[m.CACHE_AHEAD], path=str(path))):
        subprocess.run(["sh", "-c", c], env=env, check=True)
    assert open(saved + ".~1~").read() == lvm_text(seqno=4)
