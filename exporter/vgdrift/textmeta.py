"""LVM text metadata: the grammar shared by on-disk copies, backups and
archives, and the VG view a comparison needs."""

import json
import re
from typing import List, NamedTuple, Optional, Tuple

try:    # hashlib would also load OpenSSL's _hashlib (~2 ms per check) for this one digest
    from _blake2 import blake2b
except ImportError:     # pragma: no cover - an interpreter without the module
    from hashlib import blake2b

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
# A string may span lines, as LVM's reader allows (a description quotes the
# command line, which may hold a newline).  ASCII classes only: LVM's reader
# works on bytes with C's isspace/isdigit.
_TOKEN = re.compile(r"""
    [ \t\r\n\f\v]+ | \#[^\n]*
  | (?P<s>"(?:[^"\\]|\\.)*")
  | (?P<p>[{}\[\]=,])
  | (?P<w>[^\s{}\[\]=,"\#]+)
  | (?P<bad>.)
""", re.VERBOSE | re.DOTALL | re.ASCII)
# Configuration files (lvm.conf) may also quote with single quotes (no
# escapes inside), which metadata never does.
_CONFIG_TOKEN = re.compile(r"""
    [ \t\r\n\f\v]+ | \#[^\n]*
  | (?P<s>"(?:[^"\\]|\\.)*")
  | (?P<q>'[^']*')
  | (?P<p>[{}\[\]=,])
  | (?P<w>[^\s{}\[\]=,"'\#]+)
  | (?P<bad>.)
""", re.VERBOSE | re.DOTALL | re.ASCII)
# LVM's numbers: digits with an optional sign, floats with a '.' and no
# exponent ("1e5" is a parse error to LVM).
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)\Z")
# LVM reads integers with strtoll and refuses what overflows 64 bits.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_SHOWN = 60   # characters of a bad value quoted in an error message


def _show(value) -> str:
    """A value for an error message: repr, cut short (a bad value may be
    megabytes long)."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


show = _show    # public: node/lvmconf.py quotes configuration values the same way
_UNESCAPE = re.compile(r"\\(.)")
_EOF = ("eof", "", -1)


def _requote(single: str) -> str:
    """'text' as the double-quoted token read back as the same text."""
    return '"' + single[1:-1].replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Tokens:
    """(kind, text, position) triples; line numbers are computed only for
    errors, from the position."""

    def __init__(self, text: str, source: str, config: bool = False):
        self.text = text
        self.source = source
        if config:
            # A single-quoted string is read as the double-quoted one with
            # the same text (no escapes in it).
            self.it = ((("s", _requote(m.group()), m.start()) if m.lastgroup == "q"
                        else (m.lastgroup, m.group(), m.start()))
                       for m in _CONFIG_TOKEN.finditer(text) if m.lastgroup)
        else:
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
        # 2**63 has 19 decimal (22 octal) digits: longer is out of range,
        # and is never handed to int() (which refuses > 4300 digits).
        if len(digits.lstrip("0")) > 22:
            raise toks.error(pos, f"number out of 64-bit range: {_show(value)}")
        if len(digits) > 1 and digits[0] == "0":
            try:
                number = int(value, 8)     # LVM reads a leading 0 as octal
            except ValueError:
                raise toks.error(pos, f"bad octal number {_show(value)}") from None
        else:
            number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            raise toks.error(pos, f"number out of 64-bit range: {_show(value)}")
        return number
    if _FLOAT.match(value):
        return float(value)
    raise toks.error(pos, f"expected a value, got {_show(value)}")


def parse(data, source: str = "<text>", config: bool = False,
          warnings: Optional[List[str]] = None) -> dict:
    """Parses LVM config text into nested dicts (sections) with scalar or
    list values.  Raises TextError for anything that is not that grammar.

    Metadata text (the default) never holds a key twice: a duplicate is
    damage and an error.  With config=True (lvm.conf, lvmlocal.conf) the
    text is read as LVM reads configuration files: single-quoted strings
    too, a section written twice is one section, and a value written twice
    keeps the later one (LVM warns "Ignoring duplicate config value" and
    yet keeps the later: checked with lvmconfig); each such value adds a
    line to `warnings` when given."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        nul = data.find(b"\0")
        if nul >= 0:
            data = data[:nul]
        text = data.decode("utf-8", "replace")
    else:
        nul = data.find("\0")
        text = data if nul < 0 else data[:nul]
    if not config:
        try:
            return _parse_fast(text)
        except _Slow:
            pass    # the exact parser below gives the answer, or the error
    root: dict = {}
    stack = [root]
    toks = _Tokens(text, source, config)
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
        key = _scalar(toks, kind, value, pos) if kind == "s" else value
        if key in stack[-1] and not config:
            # LVM would read the first and ignore the rest; LVM never writes
            # a key twice, so this is damage, not a version to pick from.
            raise toks.error(pos, f"duplicate key {_show(key)}")
        kind2, value2, pos2 = toks.next()
        if kind2 == "p" and value2 == "{":
            if len(stack) > MAX_DEPTH:
                raise toks.error(pos2, "sections nested too deep")
            section = stack[-1].get(key)
            if not isinstance(section, dict):      # config: a repeated section merges
                section = stack[-1][key] = {}
            stack.append(section)
        elif kind2 == "p" and value2 == "=":
            if key in stack[-1] and not isinstance(stack[-1][key], dict) and warnings is not None:
                line = text.count("\n", 0, pos) + 1
                warnings.append(f"{source}:{line}: {key} set twice; LVM keeps this later value")
            stack[-1][key] = _value(toks)
        else:
            raise toks.error(pos2, f"expected '=' or '{{' after {_show(key)}, got {_show(value2 or 'end of text')}")
    if len(stack) != 1:
        raise toks.error(-1, "unterminated section: missing '}'")
    return root


# --- the fast path -----------------------------------------------------
# What LVM writes is a small subset of the grammar: sections, `key = value`
# with strings, decimal integers and flat arrays of those, comments at
# line ends.  One regular expression reads it a whole
# statement per match, in C; Python sees one tuple per statement.
# Anything else (octal, floats, comments inside a statement, quoted names,
# duplicate keys, damage of any kind) raises _Slow, and the exact parser
# above reads the text again: it alone decides what is an error and says
# where, so the fast path only has to agree with it on what it accepts.
_SP = r"[ \t\r\n\f\v]"
# Up to 18 digits and no leading zero (LVM reads that as octal): always in
# 64-bit range.  Not followed by a character that would continue the word
# (1.5, 1e5, 12abc are not integers).
_FAST_INT = r"""[+-]?(?:0|[1-9][0-9]{0,17})(?![^\s{}\[\]=,"\#])"""
_FAST_STR = r'"[^"\\]*(?:\\.[^"\\]*)*"'     # as _TOKEN's, unrolled
_FAST_ITEM = "(?:" + _FAST_STR + "|" + _FAST_INT + ")"
# Blanks and comments are skipped in front of each statement, so that
# findall yields one tuple per statement (and one, empty, at the end).
_FAST = re.compile(r"""
    (?: """ + _SP + r""" | \#[^\n]* )*
    (?: (?=(?P<k>[^\s{}\[\]=,"\#]+))(?P=k) """ + _SP + r"""*
    (?: (?P<o>\{)
      | = """ + _SP + r"""* (?: (?P<s>""" + _FAST_STR + r""")
                              | (?P<i>""" + _FAST_INT + r""")
                              | (?P<a>\[ """ + _SP + "*(?:" + _FAST_ITEM + _SP + "*," + _SP + "*)*(?:"
                                      + _FAST_ITEM + _SP + r"""*)? \]) ) )
      | (?P<c>\})
      | (?P<bad>.+)
      | \Z )
""", re.VERBOSE | re.DOTALL | re.ASCII)
_FAST_ITEMS = re.compile("(" + _FAST_STR + ")|(" + _FAST_INT + ")", re.ASCII | re.DOTALL)


def _fast_str(quoted: str) -> str:
    # As _scalar: only \" and \\ are LVM's escapes; any other pair keeps
    # the escaped character.
    return _UNESCAPE.sub(r"\1", quoted[1:-1]) if "\\" in quoted else quoted[1:-1]


class _Slow(Exception):
    """The fast path declines this text."""


def _parse_fast(text: str) -> dict:
    root: dict = {}
    cur = root
    stack = [root]
    for key, opened, string, integer, array, closed, bad in _FAST.findall(text):
        if key:
            if key in cur:
                raise _Slow
            if opened:
                if len(stack) > MAX_DEPTH:
                    raise _Slow
                cur[key] = cur = {}
                stack.append(cur)
            elif string:
                cur[key] = _fast_str(string) if "\\" in string else string[1:-1]
            elif integer:
                cur[key] = int(integer)
            elif array == "[]":
                cur[key] = []
            else:
                # The statement's pattern checked the array's shape: items
                # separated by commas, a trailing comma allowed.
                cur[key] = [int(i) if i else _fast_str(q) for q, i in _FAST_ITEMS.findall(array)]
        elif closed:
            if len(stack) == 1:
                raise _Slow
            stack.pop()
            cur = stack[-1]
        elif bad:
            raise _Slow
    if len(stack) != 1:
        raise _Slow
    return root


def _value(toks: _Tokens):
    kind, value, pos = toks.next()
    if kind in ("w", "s"):
        return _scalar(toks, kind, value, pos)
    if kind == "p" and value == "[":
        # As LVM: values separated by commas, a trailing comma allowed.
        items: list = []
        while True:
            kind, value, pos = toks.next()
            if kind == "p" and value == "]":
                return items
            if kind in ("w", "s"):
                items.append(_scalar(toks, kind, value, pos))
                kind, value, pos = toks.next()
                if kind == "p" and value == "]":
                    return items
                if kind == "p" and value == ",":
                    continue
                raise toks.error(pos, f"expected ',' or ']' in array, got {_show(value or 'end of text')}")
            raise toks.error(pos, f"expected a value or ']' in array, got {_show(value or 'end of text')}")
    raise toks.error(pos, f"expected a value, got {_show(value or 'end of text')}")


# --- the VG view -------------------------------------------------------

class PVMeta(NamedTuple):
    key: str                   # pv0, pv1... (the name segments refer to)
    id: str
    device: str                # a hint only: the writer's device name
    status: Tuple[str, ...]
    dev_size: int
    pe_start: int
    pe_count: int


class LVMeta(NamedTuple):
    name: str
    id: str
    status: Tuple[str, ...]
    extents: int               # sum of the segments' extent counts
    segments: int
    tags: Tuple[str, ...] = ()
    flags: Tuple[str, ...] = ()   # WRITE_LOCKED lives here (see write_access)


class VGMeta(NamedTuple):
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
    digest: str                # of content(): cache vs disk, not disk vs disk

    def pv(self, pv_id: str) -> Optional[PVMeta]:
        for pv in self.pvs:
            if pv.id == pv_id:
                return pv
        return None


# The C types LVM reads fields into.  LVM truncates a number that does not
# fit its field (seqno = -1 becomes 4294967295); that is damage, not a
# value to compare, so it is a parse error here.
U32 = (0, (1 << 32) - 1)
U64 = (0, INT64_MAX)      # the tokenizer already refuses more
# LVM's rules for a VG name (validate_name): 1-127 of these characters, not
# starting with '-', not "." or "..".  The name comes from the text's
# section key, which may have been quoted: "a/b" or "x y" is not a VG.
NAME_MAX = 127
_VG_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.\-]{0,126}\Z", re.ASCII)
CONTENTS = "Text Format Volume Group"


def _get(section: dict, key: str, kind, path: str, source: str, default=None, bounds=None):
    value = section.get(key, default)
    if value is None:
        raise TextError(source, None, f"{path}/{key}: missing" if path else f"{key}: missing")
    where = f"{path}/{key}" if path else key
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise TextError(source, None, f"{where}: expected {kind.__name__}, got {_show(value)}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise TextError(source, None, f"{where}: {value} out of range {bounds[0]}..{bounds[1]}")
    return value


def _strings(section: dict, key: str, path: str, source: str, required: bool = False) -> Tuple[str, ...]:
    if required and key not in section:
        raise TextError(source, None, f"{path}/{key}: missing")
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TextError(source, None, f"{path}/{key}: expected a list of strings, got {_show(value)}")
    return tuple(value)


def _uuid(section: dict, path: str, source: str) -> str:
    """An id as LVM reads it: 32 characters once the dashes are dropped."""
    value = _get(section, "id", str, path, source)
    if len(value.replace("-", "")) != 32:
        raise TextError(source, None, f"{path}/id: expected a 32-character uuid, got {_show(value)}")
    return value


def _check_header(tree: dict, source: str) -> int:
    """The top-level keys LVM insists on; returns creation_time (0 when
    absent or not a number: LVM ignores it then too)."""
    if tree.get("contents") != CONTENTS:
        got = _show(tree["contents"]) if "contents" in tree else "nothing"
        raise TextError(source, None, f"contents: expected {CONTENTS!r}, got {got}")
    if type(tree.get("version")) is not int or tree["version"] != 1:
        got = _show(tree["version"]) if "version" in tree else "nothing"
        raise TextError(source, None, f"version: expected 1, got {got}")
    ts = tree.get("creation_time", 0)
    if not isinstance(ts, int):
        return 0
    # LVM reads it as 32 bits; any other value is damage, and a timestamp
    # that no calendar function accepts must not reach the report.
    return _get(tree, "creation_time", int, "", source, bounds=U32)


def _check_vg_name(name: str, source: str) -> None:
    if not _VG_NAME.match(name) or name in (".", ".."):
        raise TextError(source, None, f"invalid VG name {_show(name)}: LVM accepts 1-{NAME_MAX} of "
                                      f"A-Z a-z 0-9 + _ . -, not starting with '-', not . or ..")


def _check_lv(lv: dict, path: str, source: str, segments: int) -> None:
    """What LVM checks of an LV beyond the fields the view keeps."""
    _get(lv, "segment_count", int, path, source, bounds=U32)
    if lv["segment_count"] != segments:
        raise TextError(source, None, f"{path}/segment_count: {lv['segment_count']}, but {segments} segment(s)")
    if "creation_time" in lv or "creation_host" in lv:
        _get(lv, "creation_time", int, path, source, bounds=U64)


WRITE_LOCKED = "WRITE_LOCKED"
MISSING_FLAG = "MISSING"
# PV keys that say how the writing node found the PV, not what the VG is.
NODE_LOCAL_PV_KEYS = frozenset(("device", "device_id_type", "device_id"))


def write_access(status, flags) -> Tuple[tuple, tuple]:
    """(status, flags) as LVM means them.  In VGs with a system ID or a
    lock type, LVM writes WRITE_LOCKED (in `flags` as 2.03.16 does; taken
    from `status` too) instead of WRITE in the VG's and each writable LV's
    status, so that older LVM treats them read-only; it means WRITE.
    A read-only LV (lvchange -pr) has neither."""
    status, flags = tuple(status), tuple(flags)
    if WRITE_LOCKED not in status and WRITE_LOCKED not in flags:
        return status, flags
    st = [s for s in status if s != WRITE_LOCKED]
    if "WRITE" not in st:
        st.insert(st.index("READ") + 1 if "READ" in st else 0, "WRITE")
    return tuple(st), tuple(f for f in flags if f != WRITE_LOCKED)


def _written_access(section: dict) -> dict:
    status, flags = section.get("status"), section.get("flags", [])
    if not isinstance(status, list) or not isinstance(flags, list):
        return section
    st, fl = write_access(status, flags)
    return dict(section, status=list(st), flags=list(fl))


def content(vg: dict) -> dict:
    """The VG section as a comparison between this node's cache and a disk
    copy of the same seqno must see it: what another writer's commit can
    change, not how this node wrote it down.
    - PV device hints are node-local names ("[unknown]" for a PV this node
      did not see) and differ between nodes for the same metadata.
    - So are `device_id_type` and `device_id`, which an LVM that uses a
      devices file writes into each PV section (its devices file's IDTYPE
      and IDNAME on the writing node).
    - A per-PV MISSING flag in a backup written by `vgcfgbackup -f` while
      this node did not see that PV is this node's view, not a commit.
    - WRITE_LOCKED means WRITE (write_access)."""
    vg = _written_access(vg)
    pvs = vg.get("physical_volumes")
    if isinstance(pvs, dict):
        out = {}
        for k, v in pvs.items():
            if isinstance(v, dict):
                v = {kk: vv for kk, vv in v.items() if kk not in NODE_LOCAL_PV_KEYS}
                if isinstance(v.get("flags"), list):
                    v["flags"] = [f for f in v["flags"] if f != MISSING_FLAG]
            out[k] = v
        vg = dict(vg, physical_volumes=out)
    lvs = vg.get("logical_volumes")
    if isinstance(lvs, dict):
        vg = dict(vg, logical_volumes={k: _written_access(v) if isinstance(v, dict) else v
                                       for k, v in lvs.items()})
    return vg


def _digest(vg: dict) -> str:
    """A digest of content(vg), for comparing this node's cache with a disk
    copy (copies on disk are compared by their header checksum instead).
    A digest rather than the structure, because on-disk copies travel from
    the worker process to the parent."""
    # JSON with sorted keys is canonical for what the parser makes (dicts
    # with string keys, lists, str, int, float) and is written in C.
    canonical = json.dumps(content(vg), sort_keys=True, ensure_ascii=True)
    return blake2b(canonical.encode(), digest_size=16).hexdigest()


def vg_from_tree(tree: dict, source: str) -> VGMeta:
    """The one VG section of a parsed metadata text."""
    sections = [k for k, v in tree.items() if isinstance(v, dict)]
    if len(sections) != 1:
        raise TextError(source, None, f"expected exactly one VG section, found {len(sections)}")
    name = sections[0]
    vg = tree[name]
    ts = _check_header(tree, source)
    _check_vg_name(name, source)
    for key in ("max_lv", "max_pv"):
        _get(vg, key, int, name, source, bounds=U32)
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
            id=_uuid(pv, path, source),
            device=pv.get("device", "") if isinstance(pv.get("device", ""), str) else "",
            status=_strings(pv, "status", path, source, required=True),
            dev_size=_get(pv, "dev_size", int, path, source, 0, bounds=U64),
            pe_start=_get(pv, "pe_start", int, path, source, bounds=U64),
            pe_count=_get(pv, "pe_count", int, path, source, bounds=U32)))
    lvs = []
    lv_section = vg.get("logical_volumes", {})
    if not isinstance(lv_section, dict):
        raise TextError(source, None, f"{name}/logical_volumes: expected a section")
    for lv_name, lv in lv_section.items():
        path = f"{name}/logical_volumes/{lv_name}"
        if not isinstance(lv, dict):
            raise TextError(source, None, f"{path}: expected a section")
        if not lv_name or "/" in lv_name:   # LVM looks LVs up by path: a '/' is unreachable
            raise TextError(source, None, f"{path}: invalid LV name {_show(lv_name)}")
        segs = [s for k, s in lv.items() if k.startswith("segment") and isinstance(s, dict)]
        _check_lv(lv, path, source, len(segs))
        extents = 0
        for k, seg in lv.items():
            if k.startswith("segment") and isinstance(seg, dict):
                _get(seg, "start_extent", int, f"{path}/{k}", source, bounds=U32)
                extents += _get(seg, "extent_count", int, f"{path}/{k}", source, bounds=U32)
        lvs.append(LVMeta(lv_name, _uuid(lv, path, source),
                          _strings(lv, "status", path, source, required=True), extents, len(segs),
                          _strings(lv, "tags", path, source), _strings(lv, "flags", path, source)))
    return VGMeta(
        name=name,
        id=_uuid(vg, name, source),
        seqno=_get(vg, "seqno", int, name, source, bounds=U32),
        creation_time=ts,
        creation_host=str(tree.get("creation_host", "")),
        description=str(tree.get("description", "")),
        status=_strings(vg, "status", name, source, required=True),
        flags=_strings(vg, "flags", name, source),
        tags=_strings(vg, "tags", name, source),
        system_id=str(vg.get("system_id", "")),
        lock_type=str(vg.get("lock_type", "")),
        extent_size=_get(vg, "extent_size", int, name, source, bounds=U32),
        pvs=tuple(pvs),
        lvs=tuple(lvs),
        digest=_digest(vg))


def parse_vg(data, source: str) -> VGMeta:
    return vg_from_tree(parse(data, source), source)
