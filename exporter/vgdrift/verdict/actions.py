"""What this node should run, in order, for a VG's state.  Pure."""

from typing import Mapping, Optional, Tuple

from .. import model as m
from ..model import FOUND
from ..textmeta import VGMeta
from .views import PVView


def actions(state: str, cache: VGMeta, cache_path: str, disk: Optional[VGMeta],
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
