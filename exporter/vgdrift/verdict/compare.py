"""Cache versus disk: one state per VG, what changed, what to do.

Pure: takes the cached VG and what the disks said about each PV, returns a
VGReport.  No I/O, no prometheus."""

import shlex
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .. import model as m
from ..model import FOUND
from ..textmeta import VGMeta
from .actions import actions, divergent_actions, outdated_actions, readiness_notes
from .changes import changes
from .readiness import NodeContext, Readiness
from .views import PVView

# The states whose exit code lets a failover go ahead (0, 1): only these
# can turn blocked (after partial, before drift in the priority order) or,
# when this node's LVM configuration leaves readiness undecided, unknown.
_READY_STATES = (m.IN_SYNC, m.DRIFT)


def _holds(v: PVView, vg_id: str) -> bool:
    """Whether the device read for this view holds a copy of VG `vg_id`."""
    return v.status == FOUND and v.copy is not None and v.copy.id == vg_id


def _copy_key(v: PVView) -> tuple:
    """What two on-disk copies share when they are the same commit.  LVM
    writes one text, with one checksum, to every PV of a commit: the
    header's (checksum, size) covers every byte, the VG name and creation
    time included.  (Parsed content without hints is for cache versus disk
    only.)  A view without a header key, as tests build them, falls back
    to the parsed copy with its name and time."""
    c = v.copy
    assert c is not None
    return (c.seqno, v.text_key if v.text_key is not None else (c.name, c.creation_time, c.digest))


def _seqno_of(v: PVView, vg_id: str) -> Optional[int]:
    return v.copy.seqno if v.copy is not None and v.copy.id == vg_id else None


def _holding(v: PVView, vg_id: str) -> str:
    if v.status != FOUND:
        return v.error or v.status
    if v.copy_error:
        return f"an unusable copy ({v.copy_error})"
    if v.copy is None:
        return "no copy of this VG" if not v.orphan else "no VG (an orphan PV)"
    if v.copy.id != vg_id:
        return f"a copy of another VG ({v.copy.name}, id {v.copy.id}) at seqno {v.copy.seqno}"
    return f"seqno {v.copy.seqno}"


def _pv_reports(cache: VGMeta, disk: Optional[VGMeta], views: Mapping[str, PVView],
                outdated: Sequence[PVView] = ()) -> Tuple[m.PVReport, ...]:
    hints = {pv.id: pv.device or None for pv in cache.pvs}
    order = [pv.id for pv in cache.pvs]
    if disk is not None and disk.id == cache.id:
        order += [pv.id for pv in disk.pvs if pv.id not in hints]
    order += [v.uuid for v in outdated if v.uuid not in order]
    stale = {v.uuid for v in outdated}
    out = []
    for uuid in order:
        v = views.get(uuid) or PVView(uuid)
        seqno = _seqno_of(v, cache.id)
        state: str
        if uuid in stale and disk is not None:
            state = m.PV_OUTDATED
            error: Optional[str] = (
                f"holds seqno {seqno} of this VG, whose newest copy (seqno {disk.seqno}) no longer lists it: "
                f"LVM ignores it (an outdated PV: typically vgreduce --removemissing ran while it was "
                f"unreachable)")
        elif v.status == FOUND:
            state = m.PV_CORRUPT if v.copy_error else m.PV_OK
            error = v.copy_error
        else:
            state, error = v.status, v.error
        out.append(m.PVReport(uuid, v.device, hints.get(uuid), state, seqno, error))
        for dup in v.duplicates:
            out.append(m.PVReport(uuid, dup, hints.get(uuid), m.PV_DUPLICATE, seqno,
                                  f"same PV uuid as {v.device}; {v.device} is used"))
        for d in v.divergent:
            # Each device with its own seqno: which copy LVM on this node
            # would use is its own choice, not this report's.
            out.append(m.PVReport(
                uuid, d.device, hints.get(uuid), m.PV_UNREADABLE if d.status == m.PV_UNREADABLE else m.PV_DUPLICATE,
                _seqno_of(d, cache.id),
                f"same PV uuid as {v.device}, but {d.differs}: {d.device} holds {_holding(d, cache.id)}, "
                f"{v.device} holds {_holding(v, cache.id)}; LVM on this node may use either (a stale "
                f"snapshot or replica of the LUN?)"))
    return tuple(out)


def _notes(ready: Optional[Readiness]) -> Tuple[str, ...]:
    """The VG's readiness warnings, and what could not be decided, as lines
    for the check's warnings."""
    if ready is None:
        return ()
    return tuple(n.message for n in ready.warnings) + tuple(
        f"cannot tell whether this node's LVM would use the VG: {u}" for u in ready.unknown)


def _unique(views: Sequence[PVView]) -> List[PVView]:
    seen = set()
    out = []
    for v in views:
        if v.uuid not in seen:
            seen.add(v.uuid)
            out.append(v)
    return out


def _readiness(node: NodeContext, vg: VGMeta, views: Mapping[str, PVView]) -> Readiness:
    return node.evaluate(vg, {pv.id: (views.get(pv.id) or PVView(pv.id)).device for pv in vg.pvs})


def holding(views: Mapping[str, PVView]) -> Dict[str, List[str]]:
    """{VG id: uuids of the views whose device holds a copy of it, sorted}:
    computed once per scan, so that comparing each VG costs its own PVs,
    not every PV of the scan."""
    out: Dict[str, List[str]] = {}
    for u in sorted(views):
        v = views[u]
        if v.status == FOUND and v.copy is not None:
            out.setdefault(v.copy.id, []).append(u)
    return out


def compare(cache: VGMeta, cache_info: m.CacheInfo, views: Mapping[str, PVView],
            duration: float = 0.0, node: Optional[NodeContext] = None,
            held: Optional[Mapping[str, Sequence[str]]] = None) -> m.VGReport:
    """The one state of a cached VG, given what each PV uuid looks like.
    With `node` (this node's LVM configuration), the newest on-disk copy is
    also judged by it: blockers make an in_sync or drifted VG `blocked`,
    and what cannot be decided makes it `unknown`.  `held`: holding(views),
    when the caller compares many VGs against the same views."""
    cached = [views.get(pv.id) or PVView(pv.id) for pv in cache.pvs]
    cached_ids = {pv.id for pv in cache.pvs}
    # Every device that showed a copy of this VG id: the cached PVs, then
    # any other (a PV that the disks list and the cache does not, or one
    # that only an older copy lists), in a fixed order so that one disk
    # state always gives one answer.
    holders = [v for v in cached if _holds(v, cache.id)]
    held = holding(views) if held is None else held
    holders += [views[u] for u in held.get(cache.id, ()) if u not in cached_ids]
    copies = [v.copy for v in holders + [d for v in holders + cached for d in v.divergent]
              if v.copy is not None and _holds(v, cache.id)]
    disk = max(copies, key=lambda c: c.seqno) if copies else None

    # The newest copy decides which PVs belong to the VG (else the cache).
    members = [pv.id for pv in (disk or cache).pvs]
    member_set = set(members)
    relevant = [views.get(u) or PVView(u) for u in members]
    considered = _unique(cached + relevant)
    found = [v for v in considered if v.status == FOUND]
    others = [v.copy for v in found if v.copy is not None and v.copy.id != cache.id]
    # PVs holding an older copy that the newest no longer lists: LVM ignores
    # them ("outdated PVs"); a same-seqno copy there is a disagreement.
    newest_seqno = disk.seqno if disk is not None else 0
    outdated = [v for v in holders if disk is not None and v.uuid not in member_set
                and v.copy is not None and v.copy.seqno < newest_seqno]
    old_ids = {v.uuid for v in outdated}
    strays = [v for v in holders if v.uuid not in member_set and v.uuid not in old_ids]

    def done(state, reason=None, shown=None):
        shown = shown if shown is not None else disk
        chg = changes(cache, shown) if shown is not None else ()
        info = m.DiskInfo(shown.name, shown.seqno, shown.creation_time, shown.creation_host,
                          shown.system_id, shown.id) if shown is not None else None
        own = shown if shown is not None and shown.id == cache.id else None
        shown_outdated = outdated if own is not None else []
        name = own.name if own is not None else cache.name
        ready = None
        if node is not None:
            # The newest on-disk copy decides; without one, the cached copy
            # still tells ownership and autoactivation (no blockers: the
            # state is already one that stops a failover).
            ready = _readiness(node, own if own is not None else cache, views)
            if own is None:
                ready = Readiness((), ready.owner, ready.autoactivation, ready.warnings, ())
            if state in _READY_STATES and ready.blockers:
                state, reason = m.BLOCKED, ready.reason
            elif state in _READY_STATES and ready.unknown:
                state, reason = m.UNKNOWN, m.VGReason.READINESS
        if reason == m.VGReason.DIVERGENT_DUPLICATE:
            todo = divergent_actions([(v.uuid, [v.device or "?"] + [d.device or "?" for d in v.divergent])
                                      for v in _unique(considered + holders) if v.divergent])
        else:
            todo = actions(state, cache, cache_info.path, shown, {v.uuid: v for v in considered}, chg,
                           ready=ready, backup_dir=node.conf.backup_dir if node is not None else None)
        todo += outdated_actions(state, shlex.quote(name), [v.uuid for v in shown_outdated])
        if ready is not None:
            todo += readiness_notes(ready)
        return m.VGReport(cache.name, cache.id, state, cache_info, info,
                          _pv_reports(cache, own, views, shown_outdated), chg, todo, reason, duration,
                          blockers=tuple(b.record() for b in ready.blockers) if ready else (),
                          owner=ready.owner if ready else None,
                          autoactivation=ready.autoactivation if ready else None,
                          notes=_notes(ready))

    unreadable = [v for v in relevant if v.status == m.PV_UNREADABLE]
    unreadable += [d for v in considered for d in v.divergent if d.status == m.PV_UNREADABLE]
    corrupt = [v for v in relevant if v.status == m.PV_CORRUPT or (v.status == FOUND and v.copy_error)]

    if unreadable:
        return done(m.UNREADABLE, unreadable[0].reason or m.REASON_IO)
    # One PV uuid on devices that disagree: whichever the hint names, LVM
    # picks one by its own rules (and refuses to activate over duplicates).
    if any(v.divergent for v in considered + holders):
        return done(m.INCONSISTENT, m.VGReason.DIVERGENT_DUPLICATE)
    if disk is None:
        if others:
            newest = max(others, key=lambda c: c.seqno)
            return done(m.UUID_MISMATCH, m.VGReason.VG_ID, shown=newest)
        if corrupt and not any(v.orphan for v in found):
            return done(m.UNREADABLE, m.REASON_CORRUPT)
        if found and all(v.no_mda for v in found):
            return done(m.PARTIAL, m.VGReason.NO_METADATA)
        return done(m.MISSING, m.VGReason.NOT_FOUND if not found else m.VGReason.REMOVED)
    keys = {_copy_key(v) for v in relevant if _holds(v, cache.id)}
    listed_orphans = [v for v in relevant if v.status == FOUND and (v.orphan or (
        v.copy is not None and v.copy.id != cache.id))]
    if len(keys) > 1 or strays or corrupt or listed_orphans:
        return done(m.INCONSISTENT, m.REASON_CORRUPT if corrupt else m.VGReason.COPIES_DISAGREE)
    if disk.seqno < cache.seqno:
        return done(m.CACHE_AHEAD, m.VGReason.SEQNO)
    if disk.seqno == cache.seqno and disk.digest != cache.digest:
        return done(m.CONFLICT, m.VGReason.CONTENT)
    if any(v.status == m.PV_MISSING for v in relevant):
        return done(m.PARTIAL, m.VGReason.PV_MISSING)
    if disk.seqno > cache.seqno:
        return done(m.DRIFT, m.VGReason.SEQNO)
    return done(m.IN_SYNC)
