"""Rendering a CheckResult: the human table and the stable JSON document."""

import json
import os
import time
from typing import Dict, List, Optional

from . import model as m

JSON_VERSION = 1

_EXPLAIN: Dict[str, str] = {
    m.IN_SYNC: "cache and disk agree",
    m.DRIFT: "the VG changed on disk since this node cached it: refresh before activating",
    m.CACHE_AHEAD: "the disks hold an OLDER version than this node cached (rolled back or wrong disks)",
    m.CONFLICT: "same seqno, different content: two writers",
    m.UUID_MISMATCH: "the PVs now carry a different VG (recreated elsewhere)",
    m.PARTIAL: "some PVs of the VG are not visible on this node",
    m.BLOCKED: "this node's LVM, as configured, would not activate the VG",
    m.MISSING: "no PV of the VG holds it any more, or none is visible",
    m.INCONSISTENT: "the VG's on-disk copies disagree or one is corrupt",
    m.UNREADABLE: "the metadata could not be read",
    m.UNKNOWN: "this node's cached copy could not be read or parsed, or this node's LVM view is unknown: "
               "its state cannot be told",
}


def _ts(epoch: Optional[int]) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _error_json(e: m.ErrorItem) -> dict:
    return {"reason": e.reason, "where": e.where, "vg": e.vg, "message": e.message}


def to_json(result: m.CheckResult) -> dict:
    vgs = []
    for vg in result.vgs:
        c, d = vg.cache, vg.disk
        vgs.append({
            "name": vg.name,
            "uuid": vg.uuid,
            "state": vg.state,
            "reason": vg.reason,
            "cache": {"path": c.path, "seqno": c.seqno, "mtime": c.mtime, "host": c.host,
                      "description": c.description},
            "disk": None if d is None else {"seqno": d.seqno, "mtime": d.mtime, "host": d.host,
                                            "name": d.name, "system_id": d.system_id},
            "pvs": [{"uuid": p.uuid, "device": p.device, "hint": p.hint, "state": p.state,
                     "seqno": p.seqno, "error": p.error} for p in vg.pvs],
            "changes": [{"type": ch.kind, "id": ch.id, "name": ch.name, "old": ch.old, "new": ch.new,
                         "message": ch.message} for ch in vg.changes],
            "actions": [{"command": a.command, "reason": a.reason} for a in vg.actions],
            "blockers": [{"reason": b.reason, "pv": b.pv, "device": b.device, "message": b.message}
                         for b in vg.blockers],
            "owner": None if vg.owner is None else {
                "system_id": vg.owner.system_id, "local_system_id": vg.owner.local_system_id,
                "this_node": vg.owner.this_node},
            "autoactivation": vg.autoactivation,
            "duration_seconds": round(vg.duration_seconds, 6),
        })
    return {
        "version": JSON_VERSION,
        "host": result.host,
        "duration_seconds": round(result.duration_seconds, 6),
        "exit_code": result.exit_code,
        "vgs": vgs,
        "errors": [_error_json(e) for e in result.errors],
        "warnings": [_error_json(e) for e in result.warnings],
        "reads": result.reads,
        "read_bytes": result.read_bytes,
        "lvm": _lvm_json(result.lvm),
        # VGs on this node's disks that no cache file describes (--discover);
        # [] also when discovery did not run ("discovered" is then null).
        "unknown_vgs": [_unknown_json(u) for u in result.unknown_vgs],
        "discovered": result.discovered,
    }


def _unknown_json(u: m.UnknownVG) -> dict:
    return {"name": u.name, "uuid": u.uuid, "seqno": u.seqno, "mtime": u.mtime, "host": u.host,
            "system_id": u.system_id, "pvs": [{"uuid": p.uuid, "device": p.device} for p in u.pvs],
            "blockers": [{"reason": b.reason, "pv": b.pv, "device": b.device, "message": b.message}
                         for b in u.blockers],
            "actions": [{"command": a.command, "reason": a.reason} for a in u.actions]}


def _lvm_json(info: Optional[m.NodeLVMInfo]) -> Optional[dict]:
    if info is None:
        return None
    return {"system_dir": info.system_dir, "use_devicesfile": info.use_devicesfile,
            "devices_file": info.devices_file, "system_id_source": info.system_id_source,
            "local_system_id": info.local_system_id}


def render_json(result: m.CheckResult) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=False) + "\n"


def render_internal_error(message: str, where: str, started: float) -> str:
    """The JSON document of a check that failed unexpectedly: the same keys
    as any other, no VGs, exit code 3 and one `internal` error.  Built from
    plain values, so that it does not depend on what just failed."""
    doc = {
        "version": JSON_VERSION,
        "host": os.uname().nodename,
        "duration_seconds": round(max(0.0, time.time() - started), 6),
        "exit_code": int(m.EXIT_UNKNOWN),
        "vgs": [],
        "errors": [{"reason": str(m.REASON_INTERNAL), "where": where, "vg": None, "message": message}],
        "warnings": [],
        "reads": 0,
        "read_bytes": 0,
        "lvm": None,
        "unknown_vgs": [],
        "discovered": None,
    }
    return json.dumps(doc, indent=2) + "\n"


def _pv_count(vg: m.VGReport) -> str:
    counts = vg.pv_counts()
    # Outdated PVs are no longer in the VG: shown, not expected.
    expected = len(vg.pvs) - counts[m.PV_DUPLICATE] - counts[m.PV_OUTDATED]
    text = f"{counts[m.PV_OK]}/{expected}"
    text += f" (+{counts[m.PV_DUPLICATE]} dup)" if counts[m.PV_DUPLICATE] else ""
    return text + (f" (+{counts[m.PV_OUTDATED]} outdated)" if counts[m.PV_OUTDATED] else "")


def render_text(result: m.CheckResult) -> str:
    lines: List[str] = []
    if not result.vgs and not result.unknown_vgs:
        return "no cached VGs: nothing to check\n" if not result.errors else ""
    if result.vgs:
        rows = [("VG", "STATE", "CACHED SEQNO", "CACHED MTIME", "DISK SEQNO", "DISK MTIME", "PVS")]
        for vg in result.vgs:
            cached_seqno = "-" if vg.state == m.UNKNOWN else str(vg.cache.seqno)   # its file was not read
            rows.append((vg.name, vg.state, cached_seqno, _ts(vg.cache.mtime),
                         str(vg.disk.seqno) if vg.disk else "-", _ts(vg.disk.mtime if vg.disk else None),
                         _pv_count(vg)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for vg in result.vgs:
        if vg.state == m.IN_SYNC:
            continue
        lines.append("")
        head = f"{vg.name}: {vg.state}: {_EXPLAIN[vg.state]}"
        if vg.disk and vg.state in (m.DRIFT, m.CACHE_AHEAD, m.CONFLICT, m.UUID_MISMATCH):
            head += (f" (cached seqno {vg.cache.seqno} from {vg.cache.host or '?'}, disk seqno "
                     f"{vg.disk.seqno} written by {vg.disk.host or '?'} at {_ts(vg.disk.mtime)})")
        lines.append(head)
        for ch in vg.changes:
            lines.append(f"  changed: {ch.message}")
        for b in vg.blockers:
            lines.append(f"  blocked: {b.reason}: {b.message}")
        for pv in vg.pvs:
            if pv.state != m.PV_OK:
                # Which device, holding which seqno: duplicates of one PV
                # uuid may hold different copies.
                where = ", ".join(([pv.device] if pv.device else [])
                                  + ([f"seqno {pv.seqno}"] if pv.seqno is not None else []))
                lines.append(f"  pv {pv.uuid}" + (f" ({where})" if where else "") + f": {pv.state}"
                             + (f": {pv.error}" if pv.error else ""))
        for a in vg.actions:
            lines.append(f"  run:     {a.command}    # {a.reason}" if a.command else f"  note:    {a.reason}")
    _render_unknown(result, lines)
    return "\n".join(lines) + "\n"


def _render_unknown(result: m.CheckResult, lines: List[str]) -> None:
    """The section for VGs on this node's disks that no cache file describes."""
    if not result.unknown_vgs:
        return
    if lines:
        lines.append("")
    lines.append(f"VGs on this node's disks that no cache file describes ({len(result.unknown_vgs)}): "
                 f"import or refresh before this node could take them over")
    rows = [("VG", "UUID", "DISK SEQNO", "DISK MTIME", "CREATED ON", "SYSTEM ID", "PVS")]
    for u in result.unknown_vgs:
        seen = sum(1 for p in u.pvs if p.device)
        rows.append((u.name, u.uuid, str(u.seqno), _ts(u.mtime), u.host or "-", u.system_id or "-",
                     f"{seen}/{len(u.pvs)}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for u in result.unknown_vgs:
        lines.append("")
        lines.append(f"{u.name}: unknown to this node ({u.uuid})")
        for b in u.blockers:
            lines.append(f"  blocked: {b.reason}: {b.message}")
        for p in u.pvs:
            if not p.device:
                lines.append(f"  pv {p.uuid}: not visible on this node")
        for a in u.actions:
            lines.append(f"  run:     {a.command}    # {a.reason}" if a.command else f"  note:    {a.reason}")
