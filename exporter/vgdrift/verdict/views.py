"""Per-PV views: what the worker's observations say about each PV uuid on
this node (the device chosen among duplicates, its committed copy, or why
it could not be seen).  Between reading and comparing; no device I/O (sysfs
only, through locate.Siblings)."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .. import model as m
from ..disk import locate, worker
from ..disk.pvread import HeadObs
from ..model import FOUND
from ..textmeta import VGMeta


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


def build_views(out: worker.Outcome, hints: Dict[str, Optional[str]],
                patterns: Sequence[str], siblings: locate.Siblings) -> Dict[str, PVView]:
    """One PVView per PV uuid: the device chosen among duplicates, its copy,
    or why it could not be seen."""
    by_uuid: Dict[str, List[HeadObs]] = {}
    for head in out.heads.values():
        if head.pv_uuid:
            by_uuid.setdefault(head.pv_uuid, []).append(head)
    by_path = {h.path: h for h in out.heads.values()}
    denied = [h for h in out.heads.values() if h.reason == m.REASON_PERMISSION]
    allowed = {p for p in locate.expand_globs(patterns)} if patterns else None
    views = {}
    for uuid in set(hints) | set(by_uuid):
        heads = by_uuid.get(uuid, [])
        hint = hints.get(uuid)
        labelled = [h for h in heads if h.label is not None]
        if labelled:
            order = locate.preferred([h.path for h in labelled], hint)
            chosen = next(h for h in labelled if h.path == order[0])
            dups = [p for p in order[1:]]
            for sib in siblings.of(chosen.path):
                if sib not in dups and sib != chosen.path and (allowed is None or sib in allowed):
                    dups.append(sib)
            views[uuid] = _found_view(uuid, chosen, tuple(dups), out)
            continue
        if heads:   # only labels that failed their checksum claim this uuid
            h = heads[0]
            views[uuid] = PVView(uuid, m.PV_CORRUPT, h.path, error=h.error, reason=m.REASON_CORRUPT)
            continue
        at_hint = by_path.get(hint) if hint else None
        if at_hint is not None and at_hint.reason in (m.REASON_TIMEOUT, m.REASON_IO, m.REASON_PERMISSION):
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, error=at_hint.error, reason=at_hint.reason)
        elif not out.complete:
            why = out.error or "the scan did not finish in time"
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, error=f"{hint or uuid}: {why}",
                                 reason=m.REASON_TIMEOUT if out.error is None else m.REASON_INTERNAL)
        elif denied:
            # Not found, but some devices could not even be opened: the PV
            # may well be on one of them.
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, reason=m.REASON_PERMISSION,
                                 error=f"PV {uuid} not found; {len(denied)} device(s) could not be "
                                       f"opened: {denied[0].error}")
        else:
            views[uuid] = PVView(uuid, m.PV_MISSING, None,
                                 error=f"no device{' matching ' + ', '.join(patterns) if patterns else ''} "
                                       f"carries PV {uuid}" + (f" (hint {hint})" if hint else ""))
    return views


def _found_view(uuid: str, head: HeadObs, dups: Tuple[str, ...], out: worker.Outcome) -> PVView:
    if head.reason in (m.REASON_TIMEOUT, m.REASON_IO, m.REASON_PERMISSION):
        return PVView(uuid, m.PV_UNREADABLE, head.path, dups, error=head.error, reason=head.reason)
    mda = head.mda
    view = PVView(uuid, FOUND, head.path, dups,
                  no_mda=mda is None and head.error is None or (mda is not None and mda.ignored),
                  orphan=mda is not None and not mda.ignored and mda.committed is None,
                  copy_error=head.error or head.damaged)
    key = head.text_key
    if key is None or head.error:
        return view
    text = out.texts.get(key)
    failed = out.text_failures.get(head.ident)
    if text is not None and text.vg is not None:
        if failed is not None:
            # Another PV holds the same committed copy intact: this one's is torn.
            return PVView(**{**view.__dict__, "copy": text.vg, "copy_error": failed.error})
        return PVView(**{**view.__dict__, "copy": text.vg})
    if text is not None and text.reason in (m.REASON_TIMEOUT, m.REASON_IO, m.REASON_PERMISSION):
        return PVView(uuid, m.PV_UNREADABLE, head.path, dups, error=text.error, reason=text.reason)
    if text is not None:
        return PVView(**{**view.__dict__, "copy_error": text.error})
    return PVView(uuid, m.PV_UNREADABLE, head.path, dups,
                  error=f"{head.path}: metadata text not read in time", reason=m.REASON_TIMEOUT)
