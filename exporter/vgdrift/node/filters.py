"""lvm.conf(5) device filters (`devices/global_filter`, `devices/filter`)
as LVM 2.03 applies them (lib/filters/filter-regex.c, device_mapper/regex).

- An entry is "a<sep>regex<sep>" or "r<sep>regex<sep>"; <sep> is any
  character ('(' '[' '{' close with ')' ']' '}').
- A device's names: every path under /dev (dot-entries skipped, symlinked
  directories not followed, /dev's filesystem only) that resolves to its
  device number: its node and its symlinks.
- Per name, the first pattern that matches decides.  The device is
  accepted if any name is accepted, rejected if every name that matches a
  pattern is rejected, accepted if no name matches.  global_filter first,
  then filter.

LVM's regex engine is its own: no {n,m}, no \\d, no (?...); `\\` quotes
any character (\\n \\r \\t excepted); `.` matches anything but NUL, \\n
and \\r; matching is a search in the name framed by two marker characters
that ^ and $ stand for (so `.` and [^...] can match them).  Each pattern
is parsed with that grammar and turned into an equivalent Python regex;
a pattern the grammar refuses, or that would leak into its neighbours in
LVM's combined expression, is reported instead of guessed at.
"""

import os
import re
import stat
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

GLOBAL_FILTER = "devices/global_filter"
FILTER = "devices/filter"
HAT, DOLLAR = 0x02, 0x03
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09}


class PatternError(ValueError):
    """A filter entry LVM refuses or vgdrift cannot reproduce."""


# ------------------------------------------------------------ LVM regex

class _Parser:
    """LVM's regex grammar (parse_rx.c), emitting a Python bytes regex:
    or := cat ('|' or)?;  cat := closure cat?;  closure := term [*+?]*;
    term := charset | '(' or ')'."""

    def __init__(self, text: str):
        try:
            self.src = text.encode("ascii")
        except UnicodeEncodeError:
            raise PatternError("non-ASCII character: LVM matches bytes, vgdrift does not guess") from None
        self.pos = 0
        self.tok: object = None
        self.next()

    def next(self) -> None:
        """Loads the next token: a frozenset of byte values (a charset),
        one of '(' ')' '*' '+' '?' '|', or None at the end."""
        s, p = self.src, self.pos
        if p >= len(s):
            self.tok = None
            return
        c = chr(s[p])
        if c == "[":
            p += 1
            neg = p < len(s) and s[p] == ord("^")
            if neg:
                p += 1
            members: Set[int] = set()
            lc = 0
            rng = False
            while p < len(s) and s[p] != ord("]"):
                if s[p] == ord("\\"):
                    p += 1
                    if p >= len(s):
                        raise PatternError("'\\' at the end of a [...] set")
                    ch = _ESCAPES.get(chr(s[p]), s[p])
                elif s[p] == ord("-") and lc:
                    rng = True
                    p += 1
                    if p >= len(s):
                        raise PatternError("incomplete range in a [...] set")
                    ch = s[p]
                else:
                    ch = s[p]
                if rng:
                    # LVM swaps a reversed range, and the range's top
                    # becomes the "last character" a following '-' extends.
                    lo, ch = min(lc, ch), max(lc, ch)
                    members.update(range(lo, ch + 1))
                    rng = False
                else:
                    members.add(ch)
                p += 1
                lc = ch
            if p >= len(s):
                raise PatternError("'[' without ']'")
            if neg:
                self.tok = frozenset(set(range(1, 256)) - members)
            else:
                self.tok = frozenset(members)
            self.pos = p + 1
            return
        if c in "()*+?|":
            self.tok = c
        elif c == "^":
            self.tok = frozenset((HAT,))
        elif c == "$":
            self.tok = frozenset((DOLLAR,))
        elif c == ".":
            self.tok = frozenset(set(range(1, 256)) - {0x0A, 0x0D})
        elif c == "\\":
            p += 1
            if p >= len(s):
                raise PatternError("'\\' at the end of the expression")
            self.tok = frozenset((_ESCAPES.get(chr(s[p]), s[p]),))
        else:
            self.tok = frozenset((s[p],))
        self.pos = p + 1

    def parse(self) -> str:
        out = self.or_term()
        if out is None:
            raise PatternError("LVM cannot parse it")
        if self.tok is not None:
            # LVM parses only a prefix here, and the rest would spill into
            # the expression it builds from all the patterns.
            raise PatternError(f"unbalanced {self.tok!r}")
        return out

    def or_term(self) -> Optional[str]:
        left = self.cat_term()
        if left is None:
            return None
        if self.tok != "|":
            return left
        self.next()
        right = self.or_term()
        if right is None:
            raise PatternError("badly formed '|' expression")
        return f"(?:{left}|{right})"

    def cat_term(self) -> Optional[str]:
        parts: List[str] = []
        while True:
            part = self.closure_term()
            if part is None:
                return "".join(parts) if parts else None
            parts.append(part)
            if self.tok == "|":
                return "".join(parts)

    def closure_term(self) -> Optional[str]:
        out = self.term()
        if out is None:
            return None
        while self.tok in ("*", "+", "?"):
            out = f"(?:{out}){self.tok}"
            self.next()
        return out

    def term(self) -> Optional[str]:
        tok = self.tok
        if isinstance(tok, frozenset):
            self.next()
            return _charset(tok)
        if tok == "(":
            self.next()
            inner = self.or_term()
            if inner is None or self.tok != ")":
                raise PatternError("missing ')'")
            self.next()
            return f"(?:{inner})"
        return None


def _charset(members: frozenset) -> str:
    if not members:
        return "[^\\x00-\\xff]"           # matches nothing, as LVM's empty set
    out, vals = [], sorted(members)
    start = prev = vals[0]
    for v in vals[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(f"\\x{start:02x}" if start == prev else f"\\x{start:02x}-\\x{prev:02x}")
        if v is not None:
            start = prev = v
    return "[" + "".join(out) + "]"


def lvm_regex(text: str) -> "re.Pattern[bytes]":
    """LVM's regex `text` as a compiled Python bytes regex to search in
    b"\\x02" + name + b"\\x03".  Raises PatternError."""
    return re.compile(_Parser(text).parse().encode("ascii"), re.DOTALL)


def frame(name: str) -> bytes:
    return bytes((HAT,)) + os.fsencode(name) + bytes((DOLLAR,))


# ------------------------------------------------------------ patterns

class Pattern(NamedTuple):
    text: str                  # the entry as written, e.g. "r|^/dev/sdb$|"
    accept: bool
    regex: "re.Pattern[bytes]"

    def matches(self, name: str) -> bool:
        return self.regex.search(frame(name)) is not None


class Filter(NamedTuple):
    """A compiled filter list; `problem` says why LVM would not use it as
    written (then every verdict of it is unknown)."""
    key: str
    patterns: Tuple[Pattern, ...] = ()
    problem: Optional[str] = None

    def decide(self, name: str) -> Optional[Pattern]:
        """The first pattern matching `name`, None when none does."""
        for p in self.patterns:
            if p.matches(name):
                return p
        return None


def parse_entry(entry: object) -> Pattern:
    """One filter entry -> Pattern.  Raises PatternError."""
    if not isinstance(entry, str):
        raise PatternError("filter patterns must be quoted strings")
    if len(entry) < 3 or entry[0] not in "ar":
        raise PatternError("a pattern is a|regex| or r|regex|")
    sep = _CLOSE.get(entry[1], entry[1])
    if entry[-1] != sep:
        raise PatternError(f"does not end with its separator {sep!r}")
    return Pattern(entry, entry[0] == "a", lvm_regex(entry[2:-1]))


def compile_filter(key: str, entries: Sequence[object]) -> Filter:
    """The entries of one filter setting (unset is LVM's default,
    ["a|.*|"]; an empty list is what LVM refuses)."""
    if not entries:
        return Filter(key, (), f"{key} is an empty list: LVM refuses it (\"Empty value not allowed\")")
    patterns = []
    for entry in entries:
        try:
            patterns.append(parse_entry(entry))
        except PatternError as e:
            shown = entry if isinstance(entry, str) else repr(entry)
            return Filter(key, (), f"{key} pattern {shown!r}: {e}")
    return Filter(key, tuple(patterns))


# ------------------------------------------------------------ verdicts

class Verdict(NamedTuple):
    """Whether this node's LVM filters let a device through.
    accepted None: unknown (see warning)."""
    device: str
    accepted: Optional[bool]
    key: Optional[str] = None          # the filter that rejected it
    pattern: Optional[str] = None      # the pattern that rejected it
    warning: Optional[str] = None

    @property
    def message(self) -> str:
        if self.accepted is None:
            return f"{self.device}: cannot tell whether LVM's filters accept it: {self.warning}"
        if self.accepted:
            return f"{self.device}: accepted by LVM's filters"
        return f"{self.device}: rejected by {self.key} pattern {self.pattern}"


def _apply(flt: Filter, names: Sequence[str]) -> Tuple[bool, Optional[str]]:
    rejecting = None
    for name in names:
        p = flt.decide(name)
        if p is None:
            continue
        if p.accept:
            return True, None
        rejecting = rejecting or p.text
    return rejecting is None, rejecting


def check(device: str, names: Sequence[str], global_filter: Filter, filter: Filter) -> Verdict:
    """Pure: the verdict of both filters on a device known by `names`
    (its node and /dev symlinks; the device path itself when empty)."""
    names = tuple(names) or (device,)
    for flt in (global_filter, filter):
        if flt.problem:
            return Verdict(device, None, warning=flt.problem)
        ok, pattern = _apply(flt, names)
        if not ok:
            return Verdict(device, False, flt.key, pattern)
    return Verdict(device, True)


# ------------------------------------------------------------ /dev names

class AliasIndex:
    """Every block device path under /dev by device number, built once per
    check (one walk of /dev) as LVM's device cache walks it."""

    def __init__(self, by_rdev: Dict[int, Tuple[str, ...]]):
        self.by_rdev = by_rdev

    @classmethod
    def build(cls, root: str = "/dev") -> "AliasIndex":
        found: Dict[int, List[str]] = {}
        try:
            root_dev = os.stat(root).st_dev
        except OSError:
            return cls({})
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    st = os.stat(e.path)       # follows symlinks, as LVM's stat()
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    # LVM follows no symlink to a directory and stays on
                    # /dev's filesystem.
                    if not e.is_symlink() and st.st_dev == root_dev:
                        stack.append(e.path)
                elif stat.S_ISBLK(st.st_mode):
                    found.setdefault(st.st_rdev, []).append(e.path)
        return cls({k: tuple(sorted(v)) for k, v in found.items()})

    def names(self, device: str) -> Tuple[str, ...]:
        """The device's names: every /dev path with its device number,
        the given path first.  Just the path when it is no block device
        under /dev (an image file in tests)."""
        try:
            st = os.stat(device)
        except OSError:
            return (device,)
        if not stat.S_ISBLK(st.st_mode):
            return (device,)
        others = [n for n in self.by_rdev.get(st.st_rdev, ()) if n != device]
        return (device, *others)


class LazyAliasIndex(AliasIndex):
    """An AliasIndex that walks /dev the first time a name is asked for:
    a check whose filters accept every device by its own path (and that
    needs no other name) never walks it, whatever /dev holds."""

    def __init__(self, root: str = "/dev"):
        super().__init__({})
        self.root = root
        self.built = False

    def names(self, device: str) -> Tuple[str, ...]:
        if not self.built:
            self.by_rdev = AliasIndex.build(self.root).by_rdev
            self.built = True
        return super().names(device)


class Names(Mapping):
    """{device: its /dev names}, each looked up when first asked for."""

    def __init__(self, devices: Iterable[str], index: AliasIndex):
        self.devices = list(devices)
        self.index = index
        self._got: Dict[str, Tuple[str, ...]] = {}

    def __getitem__(self, device: str) -> Tuple[str, ...]:
        if device not in self.devices:
            raise KeyError(device)
        if device not in self._got:
            self._got[device] = self.index.names(device)
        return self._got[device]

    def __iter__(self):
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)


def _accepted_by_own_name(device: str, global_filter: Filter, filter: Filter) -> bool:
    """Both filters accept the device by its own path: check() says accepted
    whatever its other names are (the first name accepted decides)."""
    for flt in (global_filter, filter):
        if flt.problem:
            return False
        p = flt.decide(device)
        if p is None or not p.accept:
            return False
    return True


def verdicts(devices: Iterable[str], global_filter: Sequence[object], filter: Sequence[object],
             index: Optional[AliasIndex] = None) -> Dict[str, Verdict]:
    """The filters' verdict for each device; one /dev walk for all, and
    none when each device is accepted by its own path."""
    gf = compile_filter(GLOBAL_FILTER, global_filter)
    f = compile_filter(FILTER, filter)
    index = index or LazyAliasIndex()
    return {d: Verdict(d, True) if _accepted_by_own_name(d, gf, f) else check(d, index.names(d), gf, f)
            for d in devices}
