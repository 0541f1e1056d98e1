"""What changed between the cached VG and the disk's: one Change per
structural difference, keyed by ids so that renames show as renames.  Pure."""

from typing import Dict, List, Tuple

from .. import model as m
from ..textmeta import LVMeta, PVMeta, VGMeta, write_access


def _size(extents: int, extent_size: int) -> str:
    return _bytes(extents * extent_size * 512)


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return ""


def _pv_bytes(old: PVMeta, old_vg: VGMeta, new: PVMeta, new_vg: VGMeta) -> Tuple[int, int]:
    """The PV's size in bytes before and after: dev_size (sectors), which
    `vgchange -s` leaves alone while it changes pe_count; the extents only
    for metadata without dev_size."""
    if old.dev_size and new.dev_size:
        return old.dev_size * 512, new.dev_size * 512
    return old.pe_count * old_vg.extent_size * 512, new.pe_count * new_vg.extent_size * 512


def changes(cache: VGMeta, disk: VGMeta) -> Tuple[m.Change, ...]:
    """The structural difference, keyed by ids so renames show as renames."""
    out: List[m.Change] = []
    if disk.id != cache.id:
        # `vgchange --uuid`, a vgremove + vgcreate and a vgmerge all look
        # alike from here (even shared LV ids do not tell a merge from a new
        # id): say what is known, the id, and not how.  The type keeps its
        # name for JSON consumers.
        if disk.name == cache.name:
            msg = (f"VG {cache.name}'s id changed from {cache.id} to {disk.id} "
                   f"(vgchange --uuid, or the VG was recreated)")
        else:
            msg = (f"the PVs of VG {cache.name} (id {cache.id}) now hold VG {disk.name} "
                   f"with id {disk.id}")
        out.append(m.Change("vg_recreated", msg, id=disk.id, name=disk.name, old=cache.id, new=disk.id))
        return tuple(out)
    if disk.name != cache.name:
        out.append(m.Change("vg_renamed", f"VG renamed from {cache.name} to {disk.name}",
                            id=disk.id, name=disk.name, old=cache.name, new=disk.name))
    # WRITE_LOCKED means WRITE: a new system ID or lock type is that change
    # alone, not also a VG (and every LV) turned read-only.
    cstatus, cflags = write_access(cache.status, cache.flags)
    dstatus, dflags = write_access(disk.status, disk.flags)
    for kind, attr, old, new in (("tags_changed", "tags", cache.tags, disk.tags),
                                 ("system_id_changed", "system_id", cache.system_id, disk.system_id),
                                 ("status_changed", "status", cstatus, dstatus),
                                 ("flags_changed", "flags", cflags, dflags),
                                 ("lock_type_changed", "lock_type", cache.lock_type, disk.lock_type)):
        if old != new:
            show = (lambda v: ", ".join(v) or "none") if isinstance(old, tuple) else (lambda v: repr(v or "none"))
            out.append(m.Change(kind, f"VG {attr.replace('_', ' ')} changed from {show(old)} to {show(new)}",
                                id=disk.id, name=disk.name,
                                old=list(old) if isinstance(old, tuple) else old,
                                new=list(new) if isinstance(new, tuple) else new))
    if cache.extent_size != disk.extent_size:
        old_e, new_e = cache.extent_size * 512, disk.extent_size * 512
        out.append(m.Change("extent_size_changed", f"VG extent size changed from {_bytes(old_e)} to "
                            f"{_bytes(new_e)}", id=disk.id, name=disk.name, old=old_e, new=new_e))
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
        else:
            old_b, new_b = _pv_bytes(pv, cache, dpvs[pid], disk)
            if old_b != new_b:
                out.append(m.Change("pv_resized", f"PV {pid} resized from {_bytes(old_b)} to {_bytes(new_b)}",
                                    id=pid, name=dpvs[pid].device or None, old=old_b, new=new_b))
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
        old_s, new_s = write_access(lv.status, lv.flags)[0], write_access(d.status, d.flags)[0]
        if old_s != new_s:
            out.append(m.Change("lv_status_changed", f"LV {d.name} status changed from "
                                f"{', '.join(old_s)} to {', '.join(new_s)}", id=lid, name=d.name,
                                old=list(old_s), new=list(new_s)))
    if not out and cache.digest != disk.digest:
        out.append(m.Change("metadata_changed", f"VG metadata committed again (seqno {cache.seqno} -> "
                            f"{disk.seqno}) with no change to names, sizes, PVs or tags",
                            id=disk.id, name=disk.name, old=cache.seqno, new=disk.seqno))
    return tuple(out)
