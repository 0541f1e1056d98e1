"""The node's cached view: LVM's backup files (/etc/lvm/backup/<vg>)."""

import os
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..model import REASON_CACHE, REASON_PERMISSION, ErrorItem
from ..textmeta import TextError, VGMeta, parse_vg

DEFAULT_DIR = "/etc/lvm/backup"
# A backup of even thousands of LVs is a few MiB; a larger file is not one.
MAX_FILE = 64 << 20


class CachedVG(NamedTuple):
    path: str
    vg: VGMeta


def _skipped(name: str) -> bool:
    # LVM writes a backup to a temporary ".lvm_<host>_<pid>_<n>" file and
    # renames it into place; editors and package managers leave the rest.
    return (name.startswith(".") or name.endswith(("~", ".tmp", ".swp", ".bak"))
            or ".dpkg-" in name or ".rpm" in name)


def _error(path: str, err: OSError, what: str) -> ErrorItem:
    reason = REASON_PERMISSION if isinstance(err, PermissionError) else REASON_CACHE
    return ErrorItem(reason, path, f"{path}: cannot {what}: {err.strerror or err}")


Loaded = Tuple[tuple, bytes]     # (inode, size and mtime; the bytes) of one file


def _load(path: str, memo: Optional[dict] = None) -> Tuple[tuple, Optional[bytes]]:
    """(key, bytes) of the file; (key, None) when the memo holds a parse of
    this very file.  The file is opened either way: a file this process
    may no longer read must fail here, not hide behind the memo."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        hit = memo.get(path) if memo is not None else None
        if hit is not None and hit[0] == key:
            return key, None
        return key, f.read(MAX_FILE + 1)


def read_file(path: str, memo: Optional[dict] = None, loaded: Optional[Loaded] = None) -> CachedVG:
    """Raises TextError or OSError.  With a memo (the exporter's, kept across
    scans), a file whose inode, size and mtime did not change is not parsed
    again: LVM replaces a backup by renaming a new file over it.  `loaded`:
    the file as sketch() read it."""
    key, data = loaded if loaded is not None else _load(path, memo)
    if memo is not None:
        hit = memo.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
    assert data is not None
    if len(data) > MAX_FILE:
        raise TextError(path, None, f"larger than {MAX_FILE >> 20} MiB: not an LVM backup")
    cached = CachedVG(path, parse_vg(data, path))
    if memo is not None:
        memo[path] = (key, cached)
    return cached


def _files(d: str) -> List[str]:
    """The backup files of a directory, by name.  Raises OSError."""
    paths = (os.path.join(d, name) for name in sorted(os.listdir(d)) if not _skipped(name))
    return [path for path in paths if os.path.isfile(path)]


# --- a sketch before the parse (scan.py) ----------------------------------

# The lines LVM writes for a VG's name and id and for each PV's id and
# device hint, as they look in a backup file.  A sketch is what the disk
# reads need in order to start while the files are parsed; a file written
# any other way (spacing, escapes, keys in another order) gives a sketch
# that differs from the parse, and the scan then starts over from the
# parse: a slower check, never another answer.
_SKETCH_VG = re.compile(rb'^([^\s{}#"=\[\]]+) \{\n\tid = "([^"\\\n]*)"\n', re.M)
_SKETCH_PV = re.compile(rb'^\t\tpv[0-9]+ \{\n\t\t\tid = "([^"\\\n]*)"\n\t\t\tdevice = "([^"\\\n]*)"', re.M)


class Sketch(NamedTuple):
    name: str
    id: str
    pvs: Tuple[Tuple[str, Optional[str]], ...]    # (PV uuid, device hint or None)


def sketch(dirs: Sequence[str]) -> Optional[Tuple[List[Sketch], Dict[str, Loaded]]]:
    """Each cached VG's name, id and PVs from a glance at its file, sorted as
    read_cache sorts, and the files as read (read_cache parses those same
    bytes).  None when anything is unusual (a directory or file that cannot
    be read, a file without the lines, a VG id cached twice): then the scan
    waits for the parse."""
    found: List[Sketch] = []
    loaded: Dict[str, Loaded] = {}
    try:
        for d in dirs:
            for path in _files(d):
                key, data = _load(path)
                assert data is not None     # no memo: always read
                loaded[path] = (key, data)
    except OSError:
        return None
    for _, data in loaded.values():
        vg = _SKETCH_VG.search(data)
        if vg is None or len(data) > MAX_FILE:
            return None
        pvs = tuple((pv.decode("ascii", "replace"), dev.decode("utf-8", "replace") or None)
                    for pv, dev in _SKETCH_PV.findall(data, vg.end()))
        found.append(Sketch(vg.group(1).decode("utf-8", "replace"), vg.group(2).decode("ascii", "replace"), pvs))
    if len({s.id for s in found}) != len(found):
        return None
    return sorted(found, key=lambda s: (s.name, s.id)), loaded


def read_cache(dirs: Sequence[str], memo: Optional[dict] = None, loaded: Optional[Dict[str, Loaded]] = None
               ) -> Tuple[List[CachedVG], List[ErrorItem], List[ErrorItem]]:
    """(cached VGs, errors, warnings).  One VG per VG id: when two files
    hold the same VG (a rename left the old backup), the newest wins.
    `loaded`: files sketch() read already."""
    found: List[CachedVG] = []
    errors: List[ErrorItem] = []
    seen = set()
    for d in dirs:
        try:
            paths = _files(d)
        except OSError as e:
            errors.append(_error(d, e, "list cache directory"))
            continue
        for path in paths:
            seen.add(path)
            try:
                found.append(read_file(path, memo, (loaded or {}).get(path)))
            except OSError as e:
                errors.append(_error(path, e, "read cache file"))
            except TextError as e:
                where = f"line {e.line}: " if e.line else ""
                errors.append(ErrorItem(REASON_CACHE, path, f"{path}: {where}{e.why}"))
    if memo is not None:
        for gone in set(memo) - seen:
            del memo[gone]
    best: Dict[str, CachedVG] = {}
    warnings = []
    for c in found:
        old = best.get(c.vg.id)
        if old is None:
            best[c.vg.id] = c
            continue
        newer, older = (c, old) if (c.vg.seqno, c.vg.creation_time) > (old.vg.seqno, old.vg.creation_time) else (old, c)
        best[c.vg.id] = newer
        warnings.append(ErrorItem(REASON_CACHE, older.path,
                                  f"{older.path}: VG id {c.vg.id} also cached in {newer.path} "
                                  f"(seqno {newer.vg.seqno}); ignoring this older copy (seqno {older.vg.seqno})"))
    return sorted(best.values(), key=lambda c: (c.vg.name, c.vg.id)), errors, warnings
