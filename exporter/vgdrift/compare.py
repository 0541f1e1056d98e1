"""Cache versus disk: one state per VG, what changed, what to do.

Pure: takes the cached VG and what the disks said about each PV, returns a
VGReport.  No I/O, no prometheus."""

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from . import model as m
from .textmeta import LVMeta, VGMeta

FOUND = "found"


@dataclass(frozen=True)
class PVView:
    """Everything the disks told about one PV uuid on this node."""
    uuid: str
    status: str = m.PV_MISSING           # found, missing, unreadable, corrupt
    device: Optional[str] = None
    duplicates: Tuple[str, ...] = ()
    copy: Optional[VGMeta] = None        # the committed text on this PV
    orphan: bool = False                 # its metadata area holds no VG
    no_mda: bool = False                 # no metadata area in use
    copy_error: Optional[str] = None     # header or text unusable
    error: Optional[str] = None          # why missing/unreadable/corrupt
    reason: Optional[str] = None


def _size(extents: int, extent_size: int) -> str:
    value = extents * extent_size * 512.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return ""


def changes(cache: VGMeta, disk: VGMeta) -> Tuple[m.Change, ...]:
    """The structural difference, keyed by ids so renames show as renames."""
    out: List[m.Change] = []
    if disk.id != cache.id:
        out.append(m.Change("vg_recreated", f"VG {cache.name} now has id {disk.id} (was {cache.id})",
                            id=disk.id, name=disk.name, old=cache.id, new=disk.id))
        return tuple(out)
    if disk.name != cache.name:
        out.append(m.Change("vg_renamed", f"VG renamed from {cache.name} to {disk.name}",
                            id=disk.id, name=disk.name, old=cache.name, new=disk.name))
    for kind, attr in (("tags_changed", "tags"), ("system_id_changed", "system_id"),
                       ("status_changed", "status"), ("flags_changed", "flags"),
                       ("lock_type_changed", "lock_type"), ("extent_size_changed", "extent_size")):
        old, new = getattr(cache, attr), getattr(disk, attr)
        if old != new:
            show = (lambda v: ", ".join(v) or "none") if isinstance(old, tuple) else (lambda v: repr(v))
            out.append(m.Change(kind, f"VG {attr.replace('_', ' ')} changed from {show(old)} to {show(new)}",
                                id=disk.id, name=disk.name,
                                old=list(old) if isinstance(old, tuple) else old,
                                new=list(new) if isinstance(new, tuple) else new))
    cpvs = {pv.id: pv for pv in cache.pvs}
    dpvs = {pv.id: pv for pv in disk.pvs}
    for pid, pv in dpvs.items():
        if pid not in cpvs:
            out.append(m.Change("pv_added", f"PV {pid} added (device on the writer: {pv.device or 'unknown'})",
                                id=pid, name=pv.device or None))
    for pid, pv in cpvs.items():
        if pid not in dpvs:
            out.append(m.Change("pv_removed", f"PV {pid} removed (cached hint {pv.device or 'none'})",
                                id=pid, name=pv.device or None))
        elif (pv.dev_size, pv.pe_count) != (dpvs[pid].dev_size, dpvs[pid].pe_count):
            d = dpvs[pid]
            out.append(m.Change("pv_resized", f"PV {pid} resized from {pv.pe_count} to {d.pe_count} extents",
                                id=pid, name=d.device or None, old=pv.pe_count, new=d.pe_count))
    clvs: Dict[str, LVMeta] = {lv.id: lv for lv in cache.lvs}
    dlvs: Dict[str, LVMeta] = {lv.id: lv for lv in disk.lvs}
    for lid, lv in dlvs.items():
        if lid not in clvs:
            out.append(m.Change("lv_added", f"LV {lv.name} added ({_size(lv.extents, disk.extent_size)})",
                                id=lid, name=lv.name, new=lv.extents * disk.extent_size * 512))
    for lid, lv in clvs.items():
        if lid not in dlvs:
            out.append(m.Change("lv_removed", f"LV {lv.name} removed", id=lid, name=lv.name))
            continue
        d = dlvs[lid]
        if d.name != lv.name:
            out.append(m.Change("lv_renamed", f"LV renamed from {lv.name} to {d.name}",
                                id=lid, name=d.name, old=lv.name, new=d.name))
        old_b, new_b = lv.extents * cache.extent_size * 512, d.extents * disk.extent_size * 512
        if old_b != new_b:
            out.append(m.Change("lv_resized", f"LV {d.name} resized from {_size(lv.extents, cache.extent_size)} "
                                f"to {_size(d.extents, disk.extent_size)}", id=lid, name=d.name,
                                old=old_b, new=new_b))
        if d.tags != lv.tags:
            out.append(m.Change("lv_tags_changed", f"LV {d.name} tags changed from "
                                f"{', '.join(lv.tags) or 'none'} to {', '.join(d.tags) or 'none'}",
                                id=lid, name=d.name, old=list(lv.tags), new=list(d.tags)))
        if d.status != lv.status:
            out.append(m.Change("lv_status_changed", f"LV {d.name} status changed from "
                                f"{', '.join(lv.status)} to {', '.join(d.status)}", id=lid, name=d.name,
                                old=list(lv.status), new=list(d.status)))
    if not out and cache.digest != disk.digest:
        out.append(m.Change("metadata_changed", f"VG metadata committed again (seqno {cache.seqno} -> "
                            f"{disk.seqno}) with no change to names, sizes, PVs or tags",
                            id=disk.id, name=disk.name, old=cache.seqno, new=disk.seqno))
    return tuple(out)


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


def _actions(state: str, cache: VGMeta, cache_path: str, disk: Optional[VGMeta],
             views: Mapping[str, PVView], chg: Tuple[m.Change, ...]) -> Tuple[m.Action, ...]:
    a = m.Action
    name = disk.name if disk is not None and disk.id == cache.id else cache.name
    unseen = [v for v in views.values() if v.status != FOUND]
    if state == m.IN_SYNC:
        return ()
    if state == m.DRIFT:
        out = []
        for c in chg:
            if c.kind == "pv_added":
                dev = views.get(c.id, PVView(c.id)).device
                out.append(a(f"lvmdevices --adddev {dev}",
                             f"new PV {c.id} is at {dev} on this node; needed only if this node "
                             f"uses an LVM devices file (devices/use_devicesfile=1)"))
        out.append(a(f"vgcfgbackup {name}",
                     f"refresh this node's cached metadata (seqno {cache.seqno} -> {disk.seqno})"))
        if name != cache.name:
            out.append(a(f"rm {cache_path}", f"the VG is now {name} on disk: the backup under its "
                                              f"old name would stay stale"))
        return tuple(out)
    if state == m.CACHE_AHEAD:
        return (a(None, f"do not activate: disk seqno {disk.seqno} is older than this node's cached "
                        f"seqno {cache.seqno}; check that the right LUNs (not a snapshot or an old "
                        f"replica) are presented to this node"),
                a(f"vgcfgrestore --list {cache.name}", "compare the disk's version with this node's archive"),
                a(f"vgcfgbackup {name}", "only once the disks are known to be the right ones: accept them"))
    if state == m.CONFLICT:
        return (a(None, f"do not activate: two writers committed seqno {cache.seqno} with different "
                        f"content (cached from {cache.creation_host}, on disk from {disk.creation_host}); "
                        f"decide which version is right before anything else"),
                a(f"vgcfgrestore --list {cache.name}", "find the archived versions of both"))
    if state == m.UUID_MISMATCH:
        return (a(None, f"do not activate: the PVs now hold VG {disk.name} with id {disk.id}, not the "
                        f"cached {cache.name} ({cache.id}): it was recreated elsewhere"),
                a(f"vgcfgbackup {disk.name}", "once the new VG is confirmed as the one to use"),
                a(f"rm {cache_path}", "remove the backup of the VG that no longer exists"))
    if state == m.PARTIAL:
        missing = ", ".join(v.uuid for v in unseen if v.status == m.PV_MISSING) or "some PVs"
        return (a(None, f"do not activate: PV(s) {missing} are not visible on this node; present the "
                        f"LUNs (rescan the SCSI bus, check zoning and multipath -ll), then check again"),)
    if state == m.MISSING:
        return (a(None, f"do not activate: no PV of {cache.name} on this node holds the VG; present its "
                        f"LUNs, or if it was removed on purpose, remove {cache_path}"),)
    if state == m.INCONSISTENT:
        return (a(None, "do not activate: the VG's on-disk copies disagree or one is corrupt; let the "
                        "writing node finish, then check again"),
                a(f"vgck --updatemetadata {name}", "repair from the node that sees all PVs, "
                                                   "if the disagreement persists"))
    errs = sorted({v.error for v in unseen if v.error})
    return (a(None, "do not activate: the metadata could not be read"
                    + (f" ({errs[0]})" if errs else "") + "; check the paths (multipath -ll, dmesg)"),)


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
                          _actions(state, cache, cache_info.path, shown,
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
