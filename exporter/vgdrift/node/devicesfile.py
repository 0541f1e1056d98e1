"""LVM's devices file (DIR/devices/system.devices): which devices this
node's LVM uses when `use_devicesfile = 1`.

Read as LVM 2.03.16 reads it (lib/device/device_id.c, device_ids_read):
lines starting with '#' are comments; SYSTEMID= and VERSION= lines are
the header (newer LVM also writes HASH=, PRODUCT_UUID=, HOSTNAME=); any
other line with IDTYPE= and IDNAME= is one device, with optional DEVNAME=,
PVID= (the PV uuid without dashes) and PART=.  A value "." means none.
LVM ignores every other line; vgdrift does too, with a warning.
"""

import os
import re
import stat
from functools import cached_property
from typing import Dict, NamedTuple, Optional, Tuple

# LVM reads lines with fgets into a PATH_MAX buffer: a longer line would be
# split into pieces LVM reads as separate lines.  No real file has one.
MAX_LINE = 4095
MAX_FILE = 64 << 20
HEADER_KEYS = ("SYSTEMID", "VERSION", "HASH", "PRODUCT_UUID", "HOSTNAME")
STALE_ACTION = "lvm lvmdevices --update"
_ATOI = re.compile(r"[+-]?[0-9]+")


class DevicesFileError(Exception):
    """The devices file cannot be read: names the file (and line) and why."""


class Entry(NamedTuple):
    line: int
    idtype: str
    idname: str
    devname: str          # "" when none
    pvid: str             # without dashes; "" when the device is not a PV
    part: int = 0


class _DevicesFileFields(NamedTuple):
    path: str
    exists: bool
    entries: Tuple[Entry, ...] = ()
    header: Tuple[Tuple[str, str], ...] = ()   # (key, value) in file order
    warnings: Tuple[str, ...] = ()


class DevicesFile(_DevicesFileFields):
    """A subclass of the NamedTuple only for the instance __dict__ that
    cached_property needs (a NamedTuple has none): the pvid index is built
    once per file; `_replace` makes a new instance, with no stale index."""

    @property
    def version(self) -> str:
        return dict(self.header).get("VERSION", "")

    @property
    def system_id(self) -> str:
        return dict(self.header).get("SYSTEMID", "")

    @cached_property
    def _by_pvid(self) -> Dict[str, Entry]:
        # One index per file (thousands of entries, as many PVs to look up).
        out: Dict[str, Entry] = {}
        for e in self.entries:
            if e.pvid:
                out.setdefault(e.pvid, e)      # the first, for the stale check
        return out

    def entry(self, pv_uuid: str) -> Optional[Entry]:
        """The entry listing this PV (uuid with or without dashes)."""
        return self._by_pvid.get(pvid(pv_uuid))

    def listed(self, pv_uuid: str) -> bool:
        return self.entry(pv_uuid) is not None


def pvid(uuid: str) -> str:
    """A PV uuid as the devices file writes it: without dashes."""
    return uuid.replace("-", "")


def in_use(use_devicesfile: Optional[bool], df: Optional[DevicesFile]) -> Optional[bool]:
    """Whether LVM uses the devices file: use_devicesfile = 1 and the file
    exists.  None when use_devicesfile is unknown (and a file exists: with
    no file the answer is no either way)."""
    if df is not None and not df.exists:
        return False
    if use_devicesfile is None:
        return None
    return bool(use_devicesfile) and df is not None and df.exists


def _field(line: str, key: str) -> Optional[str]:
    """LVM's reading of KEY=value in a line: the first occurrence of KEY
    anywhere, then the text after the next '=' (leading blanks skipped) up
    to a blank; "" for "." or nothing; None when KEY does not occur."""
    at = line.find(key)
    if at < 0:
        return None
    eq = line.find("=", at)
    if eq < 0:
        return ""
    value = line[eq + 1:].lstrip(" ")
    end = len(value)
    for stop in (" ", "\n"):
        i = value.find(stop)
        if 0 <= i < end:
            end = i
    value = value[:end]
    return "" if value.startswith(".") else value


def parse(data: bytes, path: str) -> DevicesFile:
    """The devices file's bytes -> DevicesFile.  Raises DevicesFileError
    for what LVM would not read as a line of text."""
    if b"\0" in data:
        at = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise DevicesFileError(f"{path}:{at}: NUL byte: not a devices file")
    text = data.decode("utf-8", "surrogateescape")
    entries, header, warnings = [], [], []
    for n, raw in enumerate(text.split("\n"), 1):
        if len(raw) > MAX_LINE:
            raise DevicesFileError(f"{path}:{n}: line longer than {MAX_LINE} characters")
        # No stripping of "\r": LVM cuts values at a blank or newline only,
        # so a CRLF file's values end in "\r" for LVM too (and match nothing).
        line = raw
        if not line.strip() or line.startswith("#"):
            continue
        head = next((k for k in HEADER_KEYS if line.startswith(k)), None)
        if head is not None:
            header.append((head, _field(line, head) or ""))
            continue
        idtype, idname = _field(line, "IDTYPE"), _field(line, "IDNAME")
        if idtype is None or idname is None:
            warnings.append(f"{path}:{n}: not a device entry (no IDTYPE= and IDNAME=); LVM ignores it")
            continue
        # LVM reads PART with atoi: an optional sign and leading digits.
        m = _ATOI.match(_field(line, "PART") or "")
        entries.append(Entry(n, idtype, idname, _field(line, "DEVNAME") or "",
                             _field(line, "PVID") or "", int(m.group()) if m else 0))
    return DevicesFile(path, True, tuple(entries), tuple(header), tuple(warnings))


def read(path: str) -> DevicesFile:
    """Reads the devices file; a missing one is DevicesFile(exists=False).
    Raises DevicesFileError when it exists but cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        return DevicesFile(path, False)
    except IsADirectoryError:
        raise DevicesFileError(f"{path}: is a directory, not a devices file") from None
    except OSError as e:
        raise DevicesFileError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_FILE:
        raise DevicesFileError(f"{path}: larger than {MAX_FILE >> 20} MiB: not a devices file")
    return parse(data, path)


class Stale(NamedTuple):
    pv: str               # the PV uuid as given
    entry: Entry
    device: str           # where vgdrift found the PV

    @property
    def message(self) -> str:
        return (f"devices file {self.entry.devname or '(no DEVNAME)'} for PV {self.pv} "
                f"(line {self.entry.line}), but the PV is on {self.device}: device ID stale; "
                f"{STALE_ACTION}")


def stale(df: DevicesFile, pv: str, device: str, names: Tuple[str, ...] = ()) -> Optional[Stale]:
    """The PV's entry when its DEVNAME no longer names the PV's device
    (`names`: the device's node and /dev symlinks, when known); None when
    the PV is not listed or the entry is current.  Pure."""
    e = df.entry(pv)
    if e is None:
        return None
    if e.devname and (e.devname == device or e.devname in names):
        return None
    return Stale(pv, e, device)


def same_device(a: str, b: str) -> bool:
    """Whether two paths name the same block device (by device number);
    for callers that have no alias index."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    if stat.S_ISBLK(sa.st_mode) and stat.S_ISBLK(sb.st_mode):
        return sa.st_rdev == sb.st_rdev
    return os.path.samestat(sa, sb)
