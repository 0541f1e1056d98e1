"""Reading one PV: its label and metadata-area header, or its committed
metadata text, with torn reads re-read.  Each function opens the device,
reads, closes, and turns every failure into an observation: they run on the
worker's threads and must not raise for bad disks."""

import time
from typing import Callable, Dict, FrozenSet, NamedTuple, Optional, Tuple, Type, TypeVar, Union

from ..model import REASON_CORRUPT, REASON_INTERNAL
from ..textmeta import TextError, VGMeta, parse_vg
from . import ondisk
from .diskio import Device, DeviceError, Peeked, peek

T = TypeVar("T")
# Told of every Device (or peek) once its reads are done: the scan's
# read and byte counters.
Counter = Callable[[Union[Device, Peeked]], None]

# The label sits in sectors 0-3 and the first metadata area's header at
# 4096 on every PV made with default alignment, so 8 KiB answers both in
# one read; a candidate scan needs only the label area.
HEAD_READ = 8192
LABEL_READ = ondisk.LABEL_AREA
RETRY_DELAYS = (0.05, 0.1, 0.2)   # a torn read is re-read after each before "corrupt"

NOT_PV = "not_pv"


class HeadObs(NamedTuple):
    """What the start of one device says."""
    path: str
    ident: tuple
    label: Optional[ondisk.Label] = None
    mda: Optional[ondisk.MdaHeader] = None    # first usable metadata area
    mda_count: int = 0
    claimed_uuid: Optional[str] = None        # from a label whose checksum failed
    error: Optional[str] = None               # about the label, or about the mda if label is set
    damaged: Optional[str] = None             # a metadata area was corrupt, another one is in use
    reason: Optional[str] = None              # timeout, io_error, permission, corrupt, not_pv
    elapsed: float = 0.0

    @property
    def pv_uuid(self) -> Optional[str]:
        if self.label:
            return ondisk.format_uuid(self.label.pv_uuid)
        return self.claimed_uuid

    @property
    def text_key(self) -> Optional[tuple]:
        if self.mda is None or self.mda.committed is None or self.mda.ignored:
            return None
        return (self.mda.committed.checksum, self.mda.committed.size)


class TextObs(NamedTuple):
    key: tuple
    path: str
    vg: Optional[VGMeta] = None
    error: Optional[str] = None
    reason: Optional[str] = None
    elapsed: float = 0.0


ErrorTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


def retrying(fn: Callable[[], T], retry_on: ErrorTypes,
             before_retry: Optional[Callable[[BaseException], None]] = None) -> T:
    """The one retry rule: fn() again after each of RETRY_DELAYS while it
    raises `retry_on` (a read racing a commit on another node); then the
    last error propagates.  `before_retry(error)` runs after each pause,
    e.g. to re-read the header that says where the text is."""
    for delay in RETRY_DELAYS + (None,):
        try:
            return fn()
        except retry_on as e:
            if delay is None:
                raise
            time.sleep(delay)
            if before_retry is not None:
                before_retry(e)
    raise AssertionError("unreachable")


def internal_error(path: str, exc: BaseException) -> str:
    """One line for an unexpected exception while reading `path`."""
    text = " ".join(str(exc).split())[:300]
    return f"{path}: internal error: {type(exc).__name__}" + (f": {text}" if text else "")


def read_head(path: str, ident: tuple, length: int, want: Optional[FrozenSet[str]],
              counter: Counter, t0: float, start: Optional[bytes] = None) -> HeadObs:
    """Label plus the first usable metadata-area header of one device.
    `want`: read the header only for these PV uuids (None: always).
    `start`: the device's first bytes, already read (read_label_area).
    Never raises: an unexpected error is this device's observation (reason
    internal), so that the other devices' reads go on."""
    obs = HeadObs(path, ident)
    try:
        return _read_head(obs, length, want, counter, t0, start)
    except Exception as e:
        return obs._replace(error=internal_error(path, e), reason=REASON_INTERNAL,
                            elapsed=time.monotonic() - t0)


def read_label_area(path: str, ident: tuple, want: Optional[FrozenSet[str]],
                    counter: Counter, t0: float) -> HeadObs:
    """read_head(path, ident, LABEL_READ, want, ...) for a sweep of many
    candidate devices, most of them no PV: one 4 KiB read and a look for
    LABELONE, with no parse, exception or message for a device without one
    (nothing outside the worker sees those).  A device with a label goes on
    to read_head with the bytes read; one that could not be read this way
    is read again by read_head, which knows the fallbacks and the errors."""
    try:
        buf, got = peek(path)
    except OSError:
        return read_head(path, ident, LABEL_READ, want, counter, t0)
    counter(Peeked(got))
    if got >= ondisk.LABEL_AREA and buf.find(ondisk.LABEL_ID, 0, ondisk.LABEL_AREA) < 0:
        return HeadObs(path, ident, reason=NOT_PV)
    return read_head(path, ident, LABEL_READ, want, counter, t0, buf[:min(got, LABEL_READ)])


def _read_head(obs: HeadObs, length: int, want: Optional[FrozenSet[str]],
               counter: Counter, t0: float, start: Optional[bytes]) -> HeadObs:
    path = obs.path
    try:
        dev = Device(path)
    except DeviceError as e:
        return obs._replace(error=str(e), reason=e.reason, elapsed=time.monotonic() - t0)
    try:
        first = [start if start is not None else dev.read(0, length)]

        def label_once():
            buf = first.pop() if first else dev.read(0, length)
            return buf, ondisk.find_label(buf[:ondisk.LABEL_AREA], path)
        try:
            buf, label = retrying(label_once, ondisk.RETRYABLE)
        except ondisk.NoLabelError as e:
            return obs._replace(error=str(e), reason=NOT_PV)
        except ondisk.TruncatedError as e:
            return obs._replace(error=str(e), reason=NOT_PV)
        except ondisk.OnDiskError as e:
            return obs._replace(claimed_uuid=ondisk.claimed_pv_uuid(dev.read(0, ondisk.LABEL_AREA)),
                                error=str(e), reason=REASON_CORRUPT)
        obs = obs._replace(label=label, mda_count=len(label.metadata_areas))
        if want is not None and ondisk.format_uuid(label.pv_uuid) not in want:
            return obs
        first_error = None
        for area in label.metadata_areas:
            def header_once(area=area):
                end = area.offset + ondisk.MDA_HEADER_SIZE
                hb = buf[area.offset:end] if end <= len(buf) else dev.read(area.offset, ondisk.MDA_HEADER_SIZE)
                return ondisk.parse_mda_header(hb, path, area.offset, dev.size)
            try:
                mda = retrying(header_once, ondisk.RETRYABLE)
            except ondisk.OnDiskError as e:
                first_error = first_error or e
                continue
            if not mda.ignored:
                return obs._replace(mda=mda, damaged=str(first_error) if first_error else None)
            obs = obs._replace(mda=mda)   # keep looking: another area may be in use
        if first_error is not None and obs.mda is None:
            return obs._replace(error=str(first_error), reason=REASON_CORRUPT)
        return obs
    except DeviceError as e:
        return obs._replace(error=str(e), reason=e.reason)
    except Exception as e:
        # Keeps the label when it was read: the PV is known, its read failed.
        return obs._replace(error=internal_error(path, e), reason=REASON_INTERNAL)
    finally:
        counter(dev)
        dev.close()


# Texts parsed by the exporter's long-lived worker in its current and its
# previous scan: it reads the same committed texts scan after scan.  The
# text is read and its checksum verified every time; only the parse of
# bytes already parsed is skipped (the key is the whole text).  Off
# elsewhere (keep_parsed()): a one-shot worker parses each text once anyway.
_keep = False
_parsed: Dict[bytes, VGMeta] = {}
_parsed_before: Dict[bytes, VGMeta] = {}


def keep_parsed() -> None:
    global _keep
    _keep = True


def new_scan() -> None:
    """Forgets the texts not seen in the last scan."""
    global _parsed, _parsed_before
    _parsed_before, _parsed = _parsed, {}


def parsed_vg(text: bytes, source: str) -> VGMeta:
    """parse_vg(text), parsed once per text in a long-lived worker (errors
    are never kept)."""
    if not _keep:
        return parse_vg(text, source)
    vg = _parsed.get(text) or _parsed_before.get(text)
    if vg is None:
        vg = parse_vg(text, source)
    _parsed[text] = vg
    return vg


class _AreaEmptied(Exception):
    """A re-read header shows no VG any more (carries the error that made
    us look again)."""


def read_text(head: HeadObs, counter: Counter, t0: float) -> Tuple[HeadObs, TextObs]:
    """The committed text of a device's metadata area, checksum verified.
    A mismatch can be a writer on another node moving the text under us:
    re-read the header too, then the text it points to.  Never raises: an
    unexpected error is this copy's observation (reason internal)."""
    state = {"head": head}
    try:
        return _read_text(state, counter, t0)
    except Exception as e:
        h = state["head"]
        # Called only for heads holding a copy: the key is never empty.
        return h, TextObs(h.text_key or head.text_key or (), head.path, error=internal_error(head.path, e),
                          reason=REASON_INTERNAL, elapsed=time.monotonic() - t0)


def _read_text(state: dict, counter: Counter, t0: float) -> Tuple[HeadObs, TextObs]:
    head = state["head"]
    path = head.path
    try:
        dev = Device(path)
    except DeviceError as e:
        return head, TextObs(head.text_key, path, error=str(e), reason=e.reason)
    try:
        def once():
            h = state["head"]
            data = b"".join(dev.read(off, n) for off, n in ondisk.ring_pieces(h.mda))
            return ondisk.check_text(data, h.mda, path)

        def reread_head(error: BaseException) -> None:
            hb = dev.read(state["head"].mda.start, ondisk.MDA_HEADER_SIZE)
            mda = ondisk.parse_mda_header(hb, path, state["head"].mda.start, dev.size)
            state["head"] = state["head"]._replace(mda=mda)
            if state["head"].text_key is None:
                raise _AreaEmptied(str(error))

        try:
            text = retrying(once, ondisk.RETRYABLE, reread_head)
        except _AreaEmptied as e:
            # The area no longer holds a VG: report that, not the race.
            return state["head"], TextObs(head.text_key, path, error=str(e), reason=REASON_CORRUPT)
        h = state["head"]
        source = f"{path} (metadata at offset {h.mda.start + h.mda.committed.offset})"
        try:
            vg = parsed_vg(text, source)
        except TextError as e:
            return h, TextObs(h.text_key, path, error=str(e), reason=REASON_CORRUPT,
                              elapsed=time.monotonic() - t0)
        return h, TextObs(h.text_key, path, vg=vg, elapsed=time.monotonic() - t0)
    except ondisk.OnDiskError as e:
        return state["head"], TextObs(state["head"].text_key or head.text_key, path,
                                      error=str(e), reason=REASON_CORRUPT)
    except DeviceError as e:
        return state["head"], TextObs(head.text_key, path, error=str(e), reason=e.reason)
    except Exception as e:
        return state["head"], TextObs(state["head"].text_key or head.text_key, path,
                                      error=internal_error(path, e), reason=REASON_INTERNAL,
                                      elapsed=time.monotonic() - t0)
    finally:
        counter(dev)
        dev.close()
