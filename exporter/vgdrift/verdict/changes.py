"""What changed between the cached VG and the disk's: one Change per
structural difference, keyed by ids so that renames show as renames.  Pure."""

from typing import Dict, List, Tuple

from .. import model as m
from ..textmeta import LVMeta, VGMeta


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
