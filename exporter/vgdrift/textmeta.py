"""LVM text metadata: the grammar shared by on-disk copies, backups and
archives, and the VG view a comparison needs."""

import hashlib
import re
from dataclasses import dataclass
from typing import Optional, Tuple

MAX_DEPTH = 64   # LVM nests at most ~6 deep; deeper input is garbage, not a VG


class TextError(Exception):
    """Text that is not LVM metadata: names the source, the line and why."""

    def __init__(self, source: str, line: Optional[int], why: str):
        self.source = source
        self.line = line
        self.why = why
        super().__init__(str(self))

    def __str__(self):
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.why}"


# One alternation scans the whole text; blanks and comments match no named
# group.  `w` covers names and numbers alike, because LVM names may start
# with digits and contain + _ . -
_TOKEN = re.compile(r"""
    [ \t\r\n\f\v]+ | \#[^\n]*
  | (?P<s>"(?:[^"\\\n]|\\.)*")
  | (?P<p>[{}\[\]=,])
  | (?P<w>[^\s{}\[\]=,"\#]+)
  | (?P<bad>.)
""", re.VERBOSE | re.DOTALL)
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?\Z")
_UNESCAPE = re.compile(r"\\(.)")
_EOF = ("eof", "", -1)


class _Tokens:
    """(kind, text, position) triples; line numbers are computed only for
    errors, from the position."""

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.it = ((m.lastgroup, m.group(), m.start()) for m in _TOKEN.finditer(text) if m.lastgroup)

    def next(self):
        tok = next(self.it, _EOF)
        if tok[0] == "bad":
            raise self.error(tok[2], f"unexpected character {tok[1]!r}")
        return tok

    def error(self, pos: int, why: str) -> TextError:
        pos = len(self.text) if pos < 0 else pos
        return TextError(self.source, self.text.count("\n", 0, pos) + 1, why)


def _scalar(toks: _Tokens, kind: str, value: str, pos: int):
    if kind == "s":
        # Only \" and \\ are escapes in LVM's writer; any other backslash
        # pair keeps the escaped character, as LVM's reader does.
        return _UNESCAPE.sub(r"\1", value[1:-1]) if "\\" in value else value[1:-1]
    if _INT.match(value):
        digits = value.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0":
            try:
                return int(value, 8)     # LVM reads a leading 0 as octal
            except ValueError:
                raise toks.error(pos, f"bad octal number {value!r}") from None
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    raise toks.error(pos, f"expected a value, got {value!r}")


def parse(data, source: str = "<text>") -> dict:
    """Parses LVM config text into nested dicts (sections) with scalar or
    list values.  Raises TextError for anything that is not that grammar."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        nul = data.find(b"\0")
        if nul >= 0:
            data = data[:nul]
        text = data.decode("utf-8", "replace")
    else:
        nul = data.find("\0")
        text = data if nul < 0 else data[:nul]
    root: dict = {}
    stack = [root]
    toks = _Tokens(text, source)
    while True:
        kind, value, pos = toks.next()
        if kind == "eof":
            break
        if kind == "p" and value == "}":
            if len(stack) == 1:
                raise toks.error(pos, "'}' without a section")
            stack.pop()
            continue
        if kind not in ("w", "s"):
            raise toks.error(pos, f"expected a name, got {value!r}")
        key = value[1:-1] if kind == "s" else value
        kind2, value2, pos2 = toks.next()
        if kind2 == "p" and value2 == "{":
            if len(stack) > MAX_DEPTH:
                raise toks.error(pos2, "sections nested too deep")
            section: dict = {}
            stack[-1][key] = section
            stack.append(section)
        elif kind2 == "p" and value2 == "=":
            stack[-1][key] = _value(toks)
        else:
            raise toks.error(pos2, f"expected '=' or '{{' after {key!r}, got {value2 or 'end of text'!r}")
    if len(stack) != 1:
        raise toks.error(-1, "unterminated section: missing '}'")
    return root


def _value(toks: _Tokens):
    kind, value, pos = toks.next()
    if kind in ("w", "s"):
        return _scalar(toks, kind, value, pos)
    if kind == "p" and value == "[":
        items = []
        while True:
            kind, value, pos = toks.next()
            if kind == "p" and value == "]":
                return items
            if kind == "p" and value == "," and items:
                continue
            if kind in ("w", "s"):
                items.append(_scalar(toks, kind, value, pos))
                continue
            raise toks.error(pos, f"expected a value or ']' in array, got {value or 'end of text'!r}")
    raise toks.error(pos, f"expected a value, got {value or 'end of text'!r}")


# --- the VG view -------------------------------------------------------

@dataclass(frozen=True)
class PVMeta:
    key: str                   # pv0, pv1... (the name segments refer to)
    id: str
    device: str                # a hint only: the writer's device name
    status: Tuple[str, ...]
    dev_size: int
    pe_start: int
    pe_count: int


@dataclass(frozen=True)
class LVMeta:
    name: str
    id: str
    status: Tuple[str, ...]
    extents: int               # sum of the segments' extent counts
    segments: int
    tags: Tuple[str, ...] = ()


@dataclass(frozen=True)
class VGMeta:
    name: str
    id: str
    seqno: int
    creation_time: int         # the VG's mtime as written by this copy
    creation_host: str
    description: str
    status: Tuple[str, ...]
    flags: Tuple[str, ...]
    tags: Tuple[str, ...]
    system_id: str
    lock_type: str
    extent_size: int           # in 512-byte sectors
    pvs: Tuple[PVMeta, ...]
    lvs: Tuple[LVMeta, ...]
    digest: str                # of the VG section without device hints

    def pv(self, pv_id: str) -> Optional[PVMeta]:
        for pv in self.pvs:
            if pv.id == pv_id:
                return pv
        return None


def _get(section: dict, key: str, kind, path: str, source: str, default=None):
    value = section.get(key, default)
    if value is None:
        raise TextError(source, None, f"{path}/{key}: missing")
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise TextError(source, None, f"{path}/{key}: expected {kind.__name__}, got {value!r}")
    return value


def _strings(section: dict, key: str, path: str, source: str) -> Tuple[str, ...]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TextError(source, None, f"{path}/{key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _digest(vg: dict) -> str:
    """A digest of the VG section, for comparing content: device hints are
    node-local names and differ between nodes for the same metadata, so they
    go.  A digest rather than the structure, because on-disk copies travel
    from the worker process to the parent."""
    pvs = vg.get("physical_volumes")
    if isinstance(pvs, dict):
        vg = dict(vg)
        vg["physical_volumes"] = {
            k: {kk: vv for kk, vv in v.items() if kk != "device"} if isinstance(v, dict) else v
            for k, v in pvs.items()}
    return hashlib.blake2b(repr(_freeze(vg)).encode(), digest_size=16).hexdigest()


def vg_from_tree(tree: dict, source: str) -> VGMeta:
    """The one VG section of a parsed metadata text."""
    sections = [k for k, v in tree.items() if isinstance(v, dict)]
    if len(sections) != 1:
        raise TextError(source, None, f"expected exactly one VG section, found {len(sections)}")
    name = sections[0]
    vg = tree[name]
    ts = tree.get("creation_time", 0)
    pvs = []
    pv_section = vg.get("physical_volumes", {})
    if not isinstance(pv_section, dict):
        raise TextError(source, None, f"{name}/physical_volumes: expected a section")
    for key, pv in pv_section.items():
        path = f"{name}/physical_volumes/{key}"
        if not isinstance(pv, dict):
            raise TextError(source, None, f"{path}: expected a section")
        pvs.append(PVMeta(
            key=key,
            id=_get(pv, "id", str, path, source),
            device=pv.get("device", "") if isinstance(pv.get("device", ""), str) else "",
            status=_strings(pv, "status", path, source),
            dev_size=_get(pv, "dev_size", int, path, source, 0),
            pe_start=_get(pv, "pe_start", int, path, source, 0),
            pe_count=_get(pv, "pe_count", int, path, source, 0)))
    lvs = []
    lv_section = vg.get("logical_volumes", {})
    if not isinstance(lv_section, dict):
        raise TextError(source, None, f"{name}/logical_volumes: expected a section")
    for lv_name, lv in lv_section.items():
        path = f"{name}/logical_volumes/{lv_name}"
        if not isinstance(lv, dict):
            raise TextError(source, None, f"{path}: expected a section")
        segs = [s for k, s in lv.items() if k.startswith("segment") and isinstance(s, dict)]
        extents = 0
        for seg in segs:
            count = seg.get("extent_count", 0)
            extents += count if isinstance(count, int) else 0
        lvs.append(LVMeta(lv_name, _get(lv, "id", str, path, source),
                          _strings(lv, "status", path, source), extents, len(segs),
                          _strings(lv, "tags", path, source)))
    return VGMeta(
        name=name,
        id=_get(vg, "id", str, name, source),
        seqno=_get(vg, "seqno", int, name, source),
        creation_time=ts if isinstance(ts, int) else 0,
        creation_host=str(tree.get("creation_host", "")),
        description=str(tree.get("description", "")),
        status=_strings(vg, "status", name, source),
        flags=_strings(vg, "flags", name, source),
        tags=_strings(vg, "tags", name, source),
        system_id=str(vg.get("system_id", "")),
        lock_type=str(vg.get("lock_type", "")),
        extent_size=_get(vg, "extent_size", int, name, source, 0),
        pvs=tuple(pvs),
        lvs=tuple(lvs),
        digest=_digest(vg))


def parse_vg(data, source: str) -> VGMeta:
    return vg_from_tree(parse(data, source), source)
