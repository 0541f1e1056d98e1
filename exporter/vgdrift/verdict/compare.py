"""Cache versus disk: one state per VG, what changed, what to do.

Pure: takes the cached VG and what the disks said about each PV, returns a
VGReport.  No I/O, no prometheus."""

from typing import Mapping, Optional, Tuple

from .. import model as m
from ..model import FOUND
from ..textmeta import VGMeta
from .actions import actions
from .changes import changes
from .views import PVView


def _pv_reports(cache: VGMeta, disk: Optional[VGMeta], views: Mapping[str, PVView]) -> Tuple[m.PVReport, ...]:
    hints = {pv.id: pv.device or None for pv in cache.pvs}
    order = [pv.id for pv in cache.pvs]
    if disk is not None and disk.id == cache.id:
        order += [pv.id for pv in disk.pvs if pv.id not in hints]
    out = []
    for uuid in order:
        v = views.get(uuid) or PVView(uuid)
        seqno = v.copy.seqno if v.copy is not None and v.copy.id == cache.id else None
        if v.status == FOUND:
            state = m.PV_CORRUPT if v.copy_error else m.PV_OK
            error = v.copy_error
        else:
            state, error = v.status, v.error
        out.append(m.PVReport(uuid, v.device, hints.get(uuid), state, seqno, error))
        for dup in v.duplicates:
            out.append(m.PVReport(uuid, dup, hints.get(uuid), m.PV_DUPLICATE, seqno,
                                  f"same PV uuid as {v.device}; {v.device} is used"))
    return tuple(out)


def compare(cache: VGMeta, cache_info: m.CacheInfo, views: Mapping[str, PVView],
            duration: float = 0.0) -> m.VGReport:
    """The one state of a cached VG, given what each PV uuid looks like."""
    cached = [views.get(pv.id) or PVView(pv.id) for pv in cache.pvs]
    found = [v for v in cached if v.status == FOUND]
    mine = [v.copy for v in found if v.copy is not None and v.copy.id == cache.id]
    extra = [views.get(pid) or PVView(pid) for pid in
             {pv.id for c in mine for pv in c.pvs} - {pv.id for pv in cache.pvs}]
    found += [v for v in extra if v.status == FOUND]
    mine += [v.copy for v in extra if v.status == FOUND and v.copy is not None and v.copy.id == cache.id]
    disk = max(mine, key=lambda c: c.seqno) if mine else None
    others = [v.copy for v in found if v.copy is not None and v.copy.id != cache.id]

    def done(state, reason=None, shown=None):
        shown = shown if shown is not None else disk
        chg = changes(cache, shown) if shown is not None else ()
        info = m.DiskInfo(shown.name, shown.seqno, shown.creation_time, shown.creation_host,
                          shown.system_id) if shown is not None else None
        own = shown if shown is not None and shown.id == cache.id else None
        return m.VGReport(cache.name, cache.id, state, cache_info, info,
                          _pv_reports(cache, own, views), chg,
                          actions(state, cache, cache_info.path, shown,
                                   {v.uuid: v for v in cached + extra}, chg),
                          reason, duration)

    # Which PVs matter: those the newest on-disk copy lists, else the cached ones.
    members = {pv.id for pv in (disk or cache).pvs}
    relevant = [v for v in cached + extra if v.uuid in members]
    unreadable = [v for v in relevant if v.status == m.PV_UNREADABLE]
    corrupt = [v for v in relevant if v.status == m.PV_CORRUPT or (v.status == FOUND and v.copy_error)]

    if unreadable:
        return done(m.UNREADABLE, unreadable[0].reason or m.REASON_IO)
    if disk is None:
        if others:
            newest = max(others, key=lambda c: c.seqno)
            return done(m.UUID_MISMATCH, "vg_id", shown=newest)
        if corrupt and not any(v.orphan for v in found):
            return done(m.UNREADABLE, m.REASON_CORRUPT)
        if found and all(v.no_mda for v in found):
            return done(m.PARTIAL, "no_metadata")
        return done(m.MISSING, "not_found" if not found else "removed")
    keys = {(c.seqno, c.digest) for c in mine}
    listed_orphans = [v for v in relevant if v.status == FOUND and (v.orphan or (
        v.copy is not None and v.copy.id != cache.id))]
    if len(keys) > 1 or corrupt or listed_orphans:
        return done(m.INCONSISTENT, m.REASON_CORRUPT if corrupt else "copies_disagree")
    if disk.seqno < cache.seqno:
        return done(m.CACHE_AHEAD, "seqno")
    if disk.seqno == cache.seqno and disk.digest != cache.digest:
        return done(m.CONFLICT, "content")
    if any(v.status == m.PV_MISSING for v in relevant):
        return done(m.PARTIAL, "pv_missing")
    if disk.seqno > cache.seqno:
        return done(m.DRIFT, "seqno")
    return done(m.IN_SYNC)
