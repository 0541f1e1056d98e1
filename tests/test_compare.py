"""The comparison alone: cached VG + what each PV showed -> one state."""

import pytest

from vgdrift import model as m
from vgdrift.model import FOUND
from vgdrift.verdict.changes import changes
from vgdrift.verdict.compare import compare
from vgdrift.verdict.views import PVView
from vgdrift.textmeta import parse_vg

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
            f'flags = [] tags = {tag_text} extent_size = 8192 {extra}\n'
            f'physical_volumes {{\n{pv_text}}}\nlogical_volumes {{\n{lv_text}}}\n}}\n'
            f'creation_host = "{host}"\ncreation_time = {1700000000 + seqno}\n')
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
    assert [a.command for a in r.actions] == ["vgcfgbackup vg1", "rm /etc/lvm/backup/vg0"]


def test_new_pv_visible_is_drift_and_invisible_is_partial():
    disk = vg(seqno=6, pvs=(1, 2, 3))
    r = run([found(1, disk), found(2, disk), found(3, disk)])
    assert r.state == m.DRIFT and any(c.kind == "pv_added" for c in r.changes)
    assert any(a.command == "lvmdevices --adddev /dev/sdc" for a in r.actions)
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
            f'extent_size = 8192 physical_volumes {{ '
            f'pv0 {{ id = "{PV[1]}" device = "{hint}" status = ["ALLOCATABLE"] dev_size = 2048000 pe_start = 2048 pe_count = 250 }} '
            f'pv1 {{ id = "{PV[2]}" device = "{hint}2" status = ["ALLOCATABLE"] dev_size = 2048000 pe_start = 2048 pe_count = 250 }} }} '
            f'logical_volumes {{ data {{ id = "{LV[1]}" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1 '
            f'segment1 {{ start_extent = 0 extent_count = 10 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }} }} }} }}\n'
            f'creation_host = "other"\ncreation_time = 1\n')


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
    assert m.STATE_EXIT[state] in (0, 1, 2)


def test_changes_of_identical_vgs_is_empty():
    assert changes(CACHED, CACHED) == ()


def test_lv_tags_and_status_changes():
    disk = vg(seqno=6, lv_tags=("backup",))
    r = run([found(1, disk), found(2, disk)])
    assert r.state == m.DRIFT
    (c,) = r.changes
    assert (c.kind, c.old, c.new) == ("lv_tags_changed", [], ["backup"])
