"""Per-PV views: what the worker's observations say about each PV uuid on
this node (the device chosen among duplicates, its committed copy, or why
it could not be seen).  Between reading and comparing; no device I/O (sysfs
only, through locate.Siblings)."""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .. import model as m
from ..disk import locate, worker
from ..disk.pvread import HeadObs
from ..model import FOUND
from ..textmeta import VGMeta


class PVView(NamedTuple):
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
    # The committed copy's (checksum, size) from its metadata-area header:
    # LVM writes one text to every PV of a commit, so on-disk copies are
    # compared by this (every byte, the VG name included), not parsed.
    text_key: Optional[tuple] = None
    # Other devices carrying this PV uuid whose label, metadata-area header
    # or copy differ from `device`'s (a stale snapshot or replica beside the
    # real LUN): one view each, with `differs` saying how.
    divergent: Tuple["PVView", ...] = ()
    differs: Optional[str] = None


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
    # Siblings are shown only among the devices --devices matched (as the
    # worker saw them); without --devices every path is fair.
    allowed = set(out.candidates or ()) if patterns else None
    views = {}
    for uuid in set(hints) | set(by_uuid):
        heads = by_uuid.get(uuid, [])
        hint = hints.get(uuid)
        labelled = [h for h in heads if h.label is not None]
        if labelled:
            order = locate.preferred([h.path for h in labelled], hint)
            chosen = next(h for h in labelled if h.path == order[0])
            # Other loops over the same file take an index of every loop on
            # the host: built only when this PV uuid was seen twice.  Seen
            # once, no other path needs telling apart: either the candidates
            # were not read (the hint was right), or they all were (a hint
            # missed, or --devices), and a sibling among them would have
            # shown the same label.  A PV found once costs sysfs reads of
            # its own device only.
            sibs = siblings.of(chosen.path, loops=len(labelled) > 1)
            dups, divergent = [], []
            for path in order[1:]:
                # Paths that sysfs proves to be the same disk hold the same
                # bytes; any other device must show the same label, header
                # and copy to be a harmless duplicate.
                head = next(h for h in labelled if h.path == path)
                how = None if path in sibs else _difference(chosen, head)
                if how is None:
                    dups.append(path)
                else:
                    divergent.append(_found_view(uuid, head, (), out)._replace(differs=how))
            for sib in sibs:
                if sib not in dups and sib != chosen.path and (allowed is None or sib in allowed):
                    dups.append(sib)
            views[uuid] = _found_view(uuid, chosen, tuple(dups), out)._replace(divergent=tuple(divergent))
            continue
        if heads:   # only labels that failed their checksum claim this uuid
            h = heads[0]
            views[uuid] = PVView(uuid, m.PV_CORRUPT, h.path, error=h.error, reason=m.REASON_CORRUPT)
            continue
        at_hint = by_path.get(hint) if hint else None
        if at_hint is not None and at_hint.reason in _READ_FAILED:
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, error=at_hint.error, reason=at_hint.reason)
        elif not out.complete:
            why = out.error or "the scan did not finish in time"
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, error=f"{hint or uuid}: {why}",
                                 reason=m.REASON_TIMEOUT if out.error is None else m.REASON_INTERNAL)
        elif denied:
            # Not found, but some devices could not even be opened: the PV
            # may well be on one of them.
            views[uuid] = PVView(uuid, m.PV_UNREADABLE, hint, reason=m.REASON_PERMISSION,
                                 error=_denied_message(uuid, denied))
        else:
            views[uuid] = PVView(uuid, m.PV_MISSING, None,
                                 error=f"no device{' matching ' + ', '.join(patterns) if patterns else ''} "
                                       f"carries PV {uuid}" + (f" (hint {hint})" if hint else ""))
    return views


# Reads that failed (an exception in the reader is reason internal): the
# device is unreadable, whatever it holds.
_READ_FAILED = (m.REASON_TIMEOUT, m.REASON_IO, m.REASON_PERMISSION, m.REASON_INTERNAL)


def _denied_message(uuid: str, denied: List[HeadObs]) -> str:
    """Which devices could not be opened: any of them may hold the PV, so
    all are named (not one that may be another PV's)."""
    paths = sorted(h.path for h in denied)
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (f"PV {uuid} not found; cannot open {shown}: Permission denied (reading devices needs "
            f"root, or the capability CAP_DAC_READ_SEARCH)")


def _difference(chosen: HeadObs, other: HeadObs) -> Optional[str]:
    """How another device carrying the same PV uuid differs from the chosen
    one, or None when it shows the very same label and metadata-area header
    (then it holds the same copy too: the header names its checksum)."""
    if chosen.reason in _READ_FAILED:
        return None        # the chosen device's own failure decides the VG
    if other.reason in _READ_FAILED:
        return "it could not be read, so it cannot be shown to hold the same metadata"
    a, b = chosen.label, other.label
    if a is not None and b is not None and a.device_size != b.device_size:
        return f"its label gives another device size ({b.device_size} bytes, not {a.device_size})"
    if a != b:
        return "its label differs"
    if chosen.mda != other.mda or chosen.reason != other.reason:
        return "its metadata-area header differs"
    return None


def _found_view(uuid: str, head: HeadObs, dups: Tuple[str, ...], out: worker.Outcome) -> PVView:
    if head.reason in _READ_FAILED:
        return PVView(uuid, m.PV_UNREADABLE, head.path, dups, error=head.error, reason=head.reason)
    mda = head.mda
    view = PVView(uuid, FOUND, head.path, dups,
                  no_mda=mda is None and head.error is None or (mda is not None and mda.ignored),
                  orphan=mda is not None and not mda.ignored and mda.committed is None,
                  copy_error=head.error or head.damaged, text_key=head.text_key)
    key = head.text_key
    if key is None or head.error:
        return view
    text = out.texts.get(key)
    failed = out.text_failures.get(head.ident)
    if text is not None and text.vg is not None:
        if failed is not None:
            # Another PV holds the same committed copy intact: this one's is torn.
            return view._replace(copy=text.vg, copy_error=failed.error)
        return view._replace(copy=text.vg)
    if text is not None and text.reason in _READ_FAILED:
        return PVView(uuid, m.PV_UNREADABLE, head.path, dups, error=text.error, reason=text.reason)
    if text is not None:
        return view._replace(copy_error=text.error)
    return PVView(uuid, m.PV_UNREADABLE, head.path, dups,
                  error=f"{head.path}: metadata text not read in time", reason=m.REASON_TIMEOUT)
