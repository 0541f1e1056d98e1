"""The comparison alone: cached VG + what each PV showed -> one state."""

import pytest

from vgdrift import model as m
from vgdrift.disk import ondisk, worker
from vgdrift.disk.pvread import HeadObs, TextObs
from vgdrift.model import FOUND
from vgdrift.textmeta import parse_vg
from vgdrift.verdict.changes import changes
from vgdrift.verdict.compare import compare
from vgdrift.verdict.views import PVView, build_views

PV = {1: "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAA1", 2: "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBB2",
      3: "CCCCCC-CCCC-CCCC-CCCC-CCCC-CCCC-CCCCC3"}
LV = {1: "LV0001-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAA1", 2: "LV0002-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAA2"}
VGID = "VGVGVG-VGVG-VGVG-VGVG-VGVG-VGVG-VGVGV1"


def vg(seqno=5, name="vg0", vgid=VGID, pvs=(1, 2), lvs=((1, "data", 10),), tags=(), host="nodea",
       extra="", lv_tags=()):
    # LVM writes an LV's tags only when it has some.
    lv_tag_text = ("tags = [" + ", ".join(f'"{t}"' for t in lv_tags) + "] ") if lv_tags else ""
    pv_text = "".join(
        f'pv{i} {{ id = "{PV[n]}" device = "/dev/sd{chr(96 + n)}" status = ["ALLOCATABLE"] '
        f'dev_size = 2048000 pe_start = 2048 pe_count = 250 }}\n' for i, n in enumerate(pvs))
    lv_text = "".join(
        f'{lname} {{ id = "{LV[n]}" status = ["READ", "WRITE", "VISIBLE"] {lv_tag_text}segment_count = 1 '
        f'segment1 {{ start_extent = 0 extent_count = {ext} type = "striped" stripe_count = 1 '
        f'stripes = ["pv0", 0] }} }}\n' for n, lname, ext in lvs)
    tag_text = "[" + ", ".join(f'"{t}"' for t in tags) + "]"
    text = (f'{name} {{ id = "{vgid}" seqno = {seqno} status = ["RESIZEABLE", "READ", "WRITE"] '
            f'flags = [] tags = {tag_text} extent_size = 8192 max_lv = 0 max_pv = 0 {extra}\n'
            f'physical_volumes {{\n{pv_text}}}\nlogical_volumes {{\n{lv_text}}}\n}}\n'
            f'creation_host = "{host}"\ncreation_time = {1700000000 + seqno}\n'
            f'contents = "Text Format Volume Group"\nversion = 1\n')
    return parse_vg(text, "test")


CACHED = vg()
INFO = m.CacheInfo("/etc/lvm/backup/vg0", CACHED.seqno, CACHED.creation_time, "nodeb", "d")


def found(n, copy=CACHED, **kw):
    return PVView(PV[n], FOUND, f"/dev/sd{chr(96 + n)}", copy=copy, **kw)


def run(views):
    return compare(CACHED, INFO, {v.uuid: v for v in views})


def test_in_sync():
    r = run([found(1), found(2)])
    assert r.state == m.IN_SYNC and r.exit_code == 0 and not r.changes and not r.actions
    assert [p.state for p in r.pvs] == ["ok", "ok"] and r.pvs[0].seqno == 5


def test_pv_without_metadata_area_still_in_sync():
    r = run([found(1), found(2, copy=None, no_mda=True)])
    assert r.state == m.IN_SYNC and r.pvs[1].seqno is None


def test_drift_lists_changes_and_refresh():
    disk = vg(seqno=9, lvs=((1, "data", 20), (2, "new", 5)), tags=("x",))
    r = run([found(1, disk), found(2, disk)])
    assert r.state == m.DRIFT and r.exit_code == 1 and r.disk.seqno == 9
    kinds = {c.kind for c in r.changes}
    assert kinds == {"lv_added", "lv_resized", "tags_changed"}
    assert [a.command for a in r.actions] == ["vgcfgbackup vg0"]


def test_rename_is_drift_named_as_in_cache():
    disk = vg(seqno=6, name="vg1", lvs=((1, "data2", 10),))
    r = run([found(1, disk), found(2, disk)])
    assert r.state == m.DRIFT and r.name == "vg0" and r.disk.name == "vg1"
    assert {c.kind for c in r.changes} == {"vg_renamed", "lv_renamed"}
    assert [a.command for a in r.actions] == ["vgcfgbackup vg1", "rm -f -- /etc/lvm/backup/vg0"]


def test_new_pv_visible_is_drift_and_invisible_is_partial():
    disk = vg(seqno=6, pvs=(1, 2, 3))
    r = run([found(1, disk), found(2, disk), found(3, disk)])
    assert r.state == m.DRIFT and any(c.kind == "pv_added" for c in r.changes)
    # No devices-file command without a node whose LVM uses one (readiness).
    assert not any("lvmdevices" in (a.command or "") for a in r.actions)
    r = run([found(1, disk), found(2, disk)])
    assert r.state == m.PARTIAL and [p.state for p in r.pvs] == ["ok", "ok", "missing"]


def test_removed_pv_that_is_gone_is_only_drift():
    disk = vg(seqno=6, pvs=(1,))
    r = run([found(1, disk)])
    assert r.state == m.DRIFT and any(c.kind == "pv_removed" for c in r.changes)


def test_cache_ahead_conflict():
    old = vg(seqno=3)
    assert run([found(1, old), found(2, old)]).state == m.CACHE_AHEAD
    other = vg(seqno=5, lvs=((1, "data", 11),), host="nodec")
    r = run([found(1, other), found(2, other)])
    assert r.state == m.CONFLICT and r.exit_code == 2 and r.changes


def test_same_content_other_hints_is_in_sync():
    disk = parse_vg(_text_with_hint("/dev/mapper/mpatha"), "t")
    assert run([found(1, disk), found(2, disk)]).state == m.IN_SYNC


def _text_with_hint(hint):
    return (f'vg0 {{ id = "{VGID}" seqno = 5 status = ["RESIZEABLE", "READ", "WRITE"] flags = [] tags = [] '
            f'extent_size = 8192 max_lv = 0 max_pv = 0 physical_volumes {{ '
            f'pv0 {{ id = "{PV[1]}" device = "{hint}" status = ["ALLOCATABLE"] '
            f'dev_size = 2048000 pe_start = 2048 pe_count = 250 }} '
            f'pv1 {{ id = "{PV[2]}" device = "{hint}2" status = ["ALLOCATABLE"] '
            f'dev_size = 2048000 pe_start = 2048 pe_count = 250 }} }} '
            f'logical_volumes {{ data {{ id = "{LV[1]}" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1 '
            f'segment1 {{ start_extent = 0 extent_count = 10 type = "striped" stripe_count = 1 '
            f'stripes = ["pv0", 0] }} }} }} }}\n'
            f'creation_host = "other"\ncreation_time = 1\n'
            f'contents = "Text Format Volume Group"\nversion = 1\n')


def test_uuid_mismatch_missing_partial():
    recreated = vg(seqno=1, vgid="NEWNEW-VGVG-VGVG-VGVG-VGVG-VGVG-VGVGV1")
    r = run([found(1, recreated), found(2, recreated)])
    assert r.state == m.UUID_MISMATCH and r.disk.seqno == 1
    assert r.changes[0].kind == "vg_recreated"
    assert run([]).state == m.MISSING
    assert run([found(1, None, orphan=True), found(2, None, orphan=True)]).state == m.MISSING
    r = run([found(1)])
    assert r.state == m.PARTIAL and r.pvs[1].state == "missing"


def test_inconsistent_and_unreadable():
    newer = vg(seqno=6)
    assert run([found(1), found(2, newer)]).state == m.INCONSISTENT
    assert run([found(1), found(2, None, copy_error="bad crc")]).state == m.INCONSISTENT
    assert run([found(1), found(2, None, orphan=True)]).state == m.INCONSISTENT
    hung = PVView(PV[2], m.PV_UNREADABLE, "/dev/sdb", error="no answer", reason="timeout")
    r = run([found(1), hung])
    assert r.state == m.UNREADABLE and r.reason == "timeout"
    corrupt = [PVView(PV[n], m.PV_CORRUPT, "/dev/x", error="bad label", reason="corrupt") for n in (1, 2)]
    assert run(corrupt).state == m.UNREADABLE


def test_duplicates_are_reported_not_counted():
    r = run([found(1, duplicates=("/dev/sdz",)), found(2)])
    assert r.state == m.IN_SYNC
    assert [(p.device, p.state) for p in r.pvs] == [("/dev/sda", "ok"), ("/dev/sdz", "duplicate"),
                                                   ("/dev/sdb", "ok")]
    assert r.pv_counts()["ok"] == 2


@pytest.mark.parametrize("state", m.VG_STATES)
def test_every_state_has_an_exit_code(state):
    assert m.STATE_EXIT[state] in (0, 1, 2, 3)


def test_changes_of_identical_vgs_is_empty():
    assert changes(CACHED, CACHED) == ()


def test_lv_tags_and_status_changes():
    disk = vg(seqno=6, lv_tags=("backup",))
    r = run([found(1, disk), found(2, disk)])
    assert r.state == m.DRIFT
    (c,) = r.changes
    assert (c.kind, c.old, c.new) == ("lv_tags_changed", [], ["backup"])


# ------------------------------------------- on-disk copies compared whole

def test_same_seqno_different_header_key_is_inconsistent():
    # LVM writes one text to every PV of a commit: same seqno with another
    # checksum or size means two different commits, even if they parse alike.
    r = run([found(1, text_key=(0x1234, 900)), found(2, text_key=(0x9999, 900))])
    assert r.state == m.INCONSISTENT and r.reason == "copies_disagree"
    r = run([found(1, text_key=(0x1234, 900)), found(2, text_key=(0x1234, 901))])
    assert r.state == m.INCONSISTENT
    assert run([found(1, text_key=(0x1234, 900)), found(2, text_key=(0x1234, 900))]).state == m.IN_SYNC


def test_copies_with_another_vg_name_are_inconsistent():
    # The digest leaves the VG name out (a rename is content-equal); between
    # on-disk copies the name counts.
    renamed = vg(name="vgx")
    r = run([found(1), found(2, renamed)])
    assert r.state == m.INCONSISTENT and r.reason == "copies_disagree"


# ------------------------------------------------------ divergent duplicates

def dup_of(n, copy, device="/dev/sdz", differs="its metadata-area header differs", **kw):
    return PVView(PV[n], FOUND, device, copy=copy, differs=differs, **kw)


@pytest.mark.parametrize("hinted_is_stale", [False, True])
def test_divergent_duplicate_is_inconsistent_whatever_the_hint(hinted_is_stale):
    new, old = vg(seqno=6), CACHED
    real, stale = (new, old) if not hinted_is_stale else (old, new)
    # The cache is at 5: the stale replica alone would look in sync.
    r = run([found(1, real, divergent=(dup_of(1, stale),)), found(2, new)])
    assert r.state == m.INCONSISTENT and r.exit_code == 2 and r.reason == m.VGReason.DIVERGENT_DUPLICATE
    rows = [(p.device, p.state, p.seqno) for p in r.pvs]
    assert rows == [("/dev/sda", "ok", real.seqno), ("/dev/sdz", "duplicate", stale.seqno),
                    ("/dev/sdb", "ok", 6)]
    err = r.pvs[1].error
    assert f"/dev/sdz holds seqno {stale.seqno}" in err and f"/dev/sda holds seqno {real.seqno}" in err
    assert r.disk.seqno == 6
    # Waiting does not clear a stale replica, and no repair is right yet.
    (act,) = r.actions
    assert act.command is None and "/dev/sda, /dev/sdz" in act.reason and "wait" not in act.reason


def test_divergent_duplicate_that_could_not_be_read_is_unreadable():
    hung = PVView(PV[1], m.PV_UNREADABLE, "/dev/sdz", error="/dev/sdz: no answer", reason="timeout",
                  differs="it could not be read")
    r = run([found(1, divergent=(hung,)), found(2)])
    assert r.state == m.UNREADABLE and r.reason == "timeout"
    assert [(p.device, p.state) for p in r.pvs][:2] == [("/dev/sda", "ok"), ("/dev/sdz", "unreadable")]


def test_identical_duplicates_stay_in_sync():
    r = run([found(1, duplicates=("/dev/sdy", "/dev/sdz")), found(2)])
    assert r.state == m.IN_SYNC and [p.state for p in r.pvs] == ["ok", "duplicate", "duplicate", "ok"]
    assert r.pvs[1].seqno == r.pvs[2].seqno == 5


# ---------------------------------------------------------- outdated PVs

# Node A lost PV2, ran vgreduce --removemissing: PV1 holds seqno 6 without
# PV2; PV2 still holds seqno 5 (with both).
REDUCED = vg(seqno=6, pvs=(1,))


def test_outdated_pv_before_refresh_is_drift():
    r = run([found(1, REDUCED), found(2, CACHED)])
    assert r.state == m.DRIFT and r.exit_code == 1 and r.disk.seqno == 6
    assert [(p.uuid, p.state, p.seqno) for p in r.pvs] == [(PV[1], "ok", 6), (PV[2], "outdated", 5)]
    assert "outdated" in r.pvs[1].error and "seqno 6" in r.pvs[1].error
    assert [c.kind for c in r.changes] == ["pv_removed"]
    # The refresh is a command for this node; the clean-up writes shared
    # metadata, advice for the node that owns the VG.
    assert [a.command for a in r.actions] == ["vgcfgbackup vg0", None]
    assert "vgck --updatemetadata vg0" in r.actions[1].reason and PV[2] in r.actions[1].reason


def test_outdated_pv_after_refresh_is_in_sync_and_still_shown():
    cached = REDUCED
    info = m.CacheInfo("/etc/lvm/backup/vg0", 6, cached.creation_time, "nodeb", "d")
    views = {PV[1]: found(1, REDUCED), PV[2]: found(2, CACHED)}
    r = compare(cached, info, views)
    assert r.state == m.IN_SYNC and r.exit_code == 0 and not r.changes
    assert [(p.uuid, p.state, p.seqno, p.hint) for p in r.pvs] == \
        [(PV[1], "ok", 6, "/dev/sda"), (PV[2], "outdated", 5, None)]
    assert [a.command for a in r.actions] == [None]
    assert "vgck --updatemetadata vg0" in r.actions[0].reason
    # Not seen at all (no sweep read it): plain in_sync, the same verdict.
    r = compare(cached, info, {PV[1]: found(1, REDUCED)})
    assert r.state == m.IN_SYNC and not r.actions and len(r.pvs) == 1


def test_outdated_pv_wiped_is_just_a_removed_pv():
    # After vgck --updatemetadata on the owner the PV is an orphan.
    r = run([found(1, REDUCED), found(2, None, orphan=True)])
    assert r.state == m.DRIFT and [p.state for p in r.pvs] == ["ok", "ok"]
    assert [a.command for a in r.actions] == ["vgcfgbackup vg0"]


def test_unlisted_copy_with_the_newest_seqno_is_not_outdated():
    # Same seqno on a PV the newest copy does not list: two commits, not an
    # older leftover.
    other = vg(seqno=6, pvs=(1, 2), lvs=((1, "data", 11),))
    r = run([found(1, REDUCED), found(2, other)])
    assert r.state == m.INCONSISTENT


def test_outdated_clean_up_is_not_offered_in_unsafe_states():
    older = vg(seqno=4, pvs=(1,))
    r = run([found(1, older), found(2, vg(seqno=3))])
    assert r.state == m.CACHE_AHEAD and r.pvs[1].state == "outdated"
    assert not any("vgck" in a.reason or "vgck" in (a.command or "") for a in r.actions)


def test_outdated_pv_does_not_hide_a_missing_member():
    r = run([found(2, CACHED)])
    # PV1 (the only one with the newest copy) is not visible: nothing says
    # the VG moved on, so PV2's copy is the newest known and PV1 is missing.
    assert r.state == m.PARTIAL


# ------------------------------------- views: which duplicates disagree

def _head(path, n=1, seqno=5, size=2048000 * 512, key=None):
    raw = PV[n].replace("-", "")
    label = ondisk.Label(1, raw, size, (ondisk.Area(1 << 20, 0),), (ondisk.Area(4096, 1 << 20),))
    crc, length = key or (1000 + seqno, 900)
    mda = ondisk.MdaHeader(4096, 1 << 20, ondisk.RawLocn(512, length, crc, 0))
    return HeadObs(path, ("dev", path), label=label, mda=mda, mda_count=1)


def _views(heads, copies, sibling_pairs=()):
    class Siblings:
        def of(self, path, loops=True):
            return [b for a, b in sibling_pairs if a == path] + [a for a, b in sibling_pairs if b == path]

    texts = {h.text_key: TextObs(h.text_key, h.path, vg=copies[h.text_key]) for h in heads}
    out = worker.Outcome(heads={h.ident: h for h in heads}, texts=texts, stats={})
    return build_views(out, {PV[1]: "/dev/sda"}, (), Siblings())


def test_build_views_splits_agreeing_and_divergent_duplicates():
    new, old = vg(seqno=6), CACHED
    real, clone, stale = _head("/dev/sda", seqno=6), _head("/dev/sdx", seqno=6), _head("/dev/sdz", seqno=5)
    copies = {real.text_key: new, stale.text_key: old}
    v = _views([real, clone, stale], copies)[PV[1]]
    assert (v.device, v.duplicates, v.copy.seqno, v.text_key) == ("/dev/sda", ("/dev/sdx",), 6, real.text_key)
    (d,) = v.divergent
    assert (d.device, d.copy.seqno, d.status) == ("/dev/sdz", 5, FOUND) and "header" in d.differs
    # Another device size in the label is a difference even with the same copy.
    bigger = _head("/dev/sdy", seqno=6, size=4096000 * 512)
    (d,) = _views([real, bigger], copies)[PV[1]].divergent
    assert "device size" in d.differs
    # A path that sysfs shows to be the same disk is never compared.
    v = _views([real, stale], copies, sibling_pairs=[("/dev/sda", "/dev/sdz")])[PV[1]]
    assert v.duplicates == ("/dev/sdz",) and v.divergent == ()


# ------------------------------------------------------------ readiness (this node's LVM)

def node(text="", local=None, devices_file=None, verdicts=None):
    from vgdrift.node import filters, lvmconf
    from vgdrift.node.systemid import LocalSystemID
    from vgdrift.verdict.readiness import NodeContext
    tree, _ = lvmconf.parse_config(text, "lvm.conf")
    conf = lvmconf.build("/etc/lvm", [("lvm.conf", tree)],
                         defaults=lambda keys: ({"devices/use_devicesfile": 0}, None))
    devs = [f"/dev/sd{chr(96 + n)}" for n in PV]
    if verdicts is None:
        verdicts = filters.verdicts(devs, conf.global_filter, conf.filter, filters.AliasIndex({}))
    return NodeContext(conf, local or LocalSystemID("none", ""), devices_file, None, verdicts)


def devfile(*ns):
    from vgdrift.node import devicesfile as dfm
    text = "VERSION=1.1.1\n" + "".join(f"IDTYPE=devname IDNAME=/dev/sd{chr(96 + n)} DEVNAME=/dev/sd{chr(96 + n)} "
                                       f"PVID={PV[n].replace('-', '')}\n" for n in ns)
    return dfm.parse(text.encode(), "/etc/lvm/devices/system.devices")


NO_AUTO = "activation { auto_activation_volume_list = [ ] }\n"
USE_DF = "devices { use_devicesfile = 1 }\n"


def test_drift_whose_new_pv_this_lvm_ignores_is_blocked_with_the_fix_first():
    disk = vg(seqno=6, pvs=(1, 2, 3))
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1, disk), found(2, disk), found(3, disk))},
                node=node(USE_DF + NO_AUTO, devices_file=devfile(1, 2)))
    assert r.state == m.BLOCKED and r.reason == "devices_file" and r.exit_code == 2
    assert [(b.reason, b.pv, b.device) for b in r.blockers] == [("devices_file", PV[3], "/dev/sdc")]
    assert any(c.kind == "pv_added" for c in r.changes)
    assert [a.command for a in r.actions] == ["lvm lvmdevices --adddev /dev/sdc", "vgcfgbackup vg0"]


def test_no_devices_file_in_use_no_adddev_ever():
    disk = vg(seqno=6, pvs=(1, 2, 3))
    views = {v.uuid: v for v in (found(1, disk), found(2, disk), found(3, disk))}
    # use_devicesfile = 1 but no file: LVM uses the filters; adding a device
    # would create a file that hides every other PV.
    from vgdrift.node.devicesfile import DevicesFile
    r = compare(CACHED, INFO, views, node=node(USE_DF + NO_AUTO, devices_file=DevicesFile("/x", False)))
    assert r.state == m.DRIFT and r.blockers == ()
    assert not any("lvmdevices" in (a.command or "") for a in r.actions)


def test_blocked_comes_after_partial_and_conflict():
    disk = vg(seqno=6, pvs=(1, 2, 3))
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1, disk), found(2, disk))},
                node=node(USE_DF + NO_AUTO, devices_file=devfile(1)))
    assert r.state == m.PARTIAL and r.blockers      # the blockers are still reported
    other = vg(seqno=5, lvs=((1, "data", 11),))
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1, other), found(2, other))},
                node=node(USE_DF + NO_AUTO, devices_file=devfile(1)))
    assert r.state == m.CONFLICT


def test_filter_rejecting_a_pv_blocks_an_in_sync_vg():
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1), found(2))},
                node=node('devices { filter = [ "r|^/dev/sdb$|" ] }\n' + NO_AUTO))
    assert r.state == m.BLOCKED and r.reason == "filter"
    assert [a.command for a in r.actions] == [None]


def test_undecided_readiness_is_unknown_not_in_sync():
    from vgdrift.node.systemid import LocalSystemID
    owned = vg(extra='system_id = "hosta"')
    cache_info = m.CacheInfo("/etc/lvm/backup/vg0", 5, owned.creation_time, "nodeb", "d")
    r = compare(owned, cache_info, {v.uuid: v for v in (found(1, owned), found(2, owned))},
                node=node(NO_AUTO, local=LocalSystemID("appmachineid", None)))
    assert r.state == m.UNKNOWN and r.reason == "readiness" and r.exit_code == 3
    assert r.owner == m.Owner("hosta", None, None) and r.notes
    assert r.actions[0].command is None and "cannot tell" in r.actions[0].reason


def test_autoactivation_is_a_warning_and_advice_not_a_state():
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1), found(2))}, node=node())
    assert r.state == m.IN_SYNC and r.autoactivation is True
    assert r.owner == m.Owner("", "", False)
    (a,) = r.actions
    assert a.command is None and a.reason.endswith("vgchange --setautoactivation n vg0")
    assert any("autoactivation" in n for n in r.notes)
    r = compare(CACHED, INFO, {v.uuid: v for v in (found(1), found(2))}, node=node(NO_AUTO))
    assert r.autoactivation is False and r.actions == () and r.notes == ()


def test_loop_index_only_when_a_pv_is_seen_twice():
    """The index of every loop device on the host (issue 13: 60 ms with a
    thousand loops) is asked for only when a PV uuid shows up on two
    devices; a PV found once, at its hint or by reading the candidates
    (each of which would have shown a sibling's label too), costs the sysfs
    of its own device only."""
    asked = []

    class Siblings:
        def of(self, path, loops=True):
            asked.append((path, loops))
            return []

    one = _head("/dev/sda", seqno=6)
    copies = {one.text_key: vg(seqno=6)}
    texts = {one.text_key: TextObs(one.text_key, one.path, vg=copies[one.text_key])}
    build_views(worker.Outcome(heads={one.ident: one}, texts=texts, stats={}), {PV[1]: "/dev/sda"}, (), Siblings())
    assert asked == [("/dev/sda", False)]
    asked.clear()
    build_views(worker.Outcome(heads={one.ident: one}, texts=texts, stats={}, candidates=("/dev/sda",)),
                {PV[1]: "/dev/sda"}, (), Siblings())
    assert asked == [("/dev/sda", False)]
    asked.clear()
    two = _head("/dev/sdb", seqno=6)
    build_views(worker.Outcome(heads={one.ident: one, two.ident: two}, texts=texts, stats={}),
                {PV[1]: "/dev/sda"}, (), Siblings())
    assert asked == [("/dev/sda", True)]
