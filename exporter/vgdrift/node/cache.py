"""The node's cached view: LVM's backup files (/etc/lvm/backup/<vg>)."""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..model import REASON_CACHE, REASON_PERMISSION, ErrorItem
from ..textmeta import TextError, VGMeta, parse_vg

DEFAULT_DIR = "/etc/lvm/backup"
# A backup of even thousands of LVs is a few MiB; a larger file is not one.
MAX_FILE = 64 << 20


@dataclass(frozen=True)
class CachedVG:
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


def read_file(path: str, memo: Optional[dict] = None) -> CachedVG:
    """Raises TextError or OSError.  With a memo (the exporter's, kept across
    scans), a file whose inode, size and mtime did not change is not parsed
    again: LVM replaces a backup by renaming a new file over it."""
    with open(path, "rb") as f:
        if memo is not None:
            st = os.fstat(f.fileno())
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            hit = memo.get(path)
            if hit is not None and hit[0] == key:
                return hit[1]
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise TextError(path, None, f"larger than {MAX_FILE >> 20} MiB: not an LVM backup")
    cached = CachedVG(path, parse_vg(data, path))
    if memo is not None:
        memo[path] = (key, cached)
    return cached


def read_cache(dirs: Sequence[str], memo: Optional[dict] = None
               ) -> Tuple[List[CachedVG], List[ErrorItem], List[ErrorItem]]:
    """(cached VGs, errors, warnings).  One VG per VG id: when two files
    hold the same VG (a rename left the old backup), the newest wins."""
    found: List[CachedVG] = []
    errors: List[ErrorItem] = []
    seen = set()
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            errors.append(_error(d, e, "list cache directory"))
            continue
        for name in names:
            path = os.path.join(d, name)
            if _skipped(name) or not os.path.isfile(path):
                continue
            seen.add(path)
            try:
                found.append(read_file(path, memo))
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
