"""Where PVs may be: candidate devices, other paths to the same disk, and
which of several paths to one PV to trust.  Reads sysfs and the /dev tree,
never a device."""

import glob
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .diskio import identity

SYS_BLOCK = "/sys/class/block"
# Never PVs: RAM disks, compressed swap, optical and floppy drives.
_SKIP_PREFIXES = ("ram", "zram", "sr", "fd")


def _read_sys(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def system_devices(sys_block: str = SYS_BLOCK) -> List[str]:
    """Every disk and partition the kernel knows that has media."""
    out: List[str] = []
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return out
    for name in names:
        if name.startswith(_SKIP_PREFIXES):
            continue
        if _read_sys(os.path.join(sys_block, name, "size")) in ("", "0"):
            continue    # unattached loop devices, empty card readers
        out.append("/dev/" + name.replace("!", "/"))
    return out


def expand_globs(patterns: Sequence[str]) -> List[str]:
    """Paths matching the patterns (identified() keeps the devices)."""
    out = []
    for pattern in patterns:
        out += sorted(glob.glob(pattern))
    return out


def identified(paths: Iterable[str]) -> List[Tuple[str, tuple]]:
    """(path, identity) of each path that is a block device or a regular
    file: one stat each, whatever else the path is (a directory, gone)."""
    out = []
    for path in paths:
        if not path:
            continue
        try:
            out.append((path, identity(path)))
        except OSError:
            continue
    return out


def unique(found: Iterable[Tuple[str, tuple]], seen=()) -> List[Tuple[str, tuple]]:
    """The first (path, identity) of each device not in `seen`."""
    seen = set(seen)
    out = []
    for path, ident in found:
        if ident not in seen:
            seen.add(ident)
            out.append((path, ident))
    return out


def distinct(paths: Iterable[str], seen=()) -> List[Tuple[str, tuple]]:
    """(path, identity) of each device not in `seen`; the first path of a
    device wins, paths that do not exist are dropped."""
    return unique(identified(paths), seen)


def candidate_paths(patterns: Sequence[str]) -> List[str]:
    """The paths the patterns match, or every disk of the host without any."""
    return expand_globs(patterns) if patterns else system_devices()


def _real(path: str) -> str:
    # A kernel name in /dev (/dev/sdb, /dev/loop7) is most PVs' path: one
    # lstat says it is no symlink, where realpath looks at each component.
    if path.startswith("/dev/") and "/" not in path[5:] and not os.path.islink(path):
        return path
    return os.path.realpath(path)


def is_dm(path: str) -> bool:
    return os.path.basename(_real(path)).startswith("dm-") or path.startswith("/dev/mapper/")


def preferred(paths: Iterable[str], hint: Optional[str]) -> List[str]:
    """Orders paths to one PV: the cached hint first, then device-mapper
    devices (a multipath map beats its component paths), then by name.
    The hint is compared as a name: the worker read it under that name."""
    paths = list(paths)
    if len(paths) < 2:
        return paths
    return sorted(paths, key=lambda path: (path != hint, not is_dm(path), path))


def _block_name(path: str) -> str:
    return os.path.basename(_real(path))


class Siblings:
    """Other paths to the very same bytes that sysfs can prove without a
    read: loop devices over the same file and offset, and the component
    paths of a multipath map (or the map over a component).

    The loop index is built once, on first need: a host may carry a
    thousand loop devices, and one pass over them beats one per PV."""

    def __init__(self, sys_block: str = SYS_BLOCK):
        self.sys_block = sys_block
        self._loops: Optional[Dict[str, List[str]]] = None   # backing file -> loop names
        self._backing: Dict[str, str] = {}                    # loop name -> backing file

    def _loop(self, name: str, field: str) -> str:
        return _read_sys(os.path.join(self.sys_block, name, "loop", field))

    def prepare(self) -> None:
        """Builds the loop index: which loops sit on which file.  Cheap to
        call early, e.g. while a worker is busy reading."""
        if self._loops is None:
            loops: Dict[str, List[str]] = {}
            for name in sorted(_listdir(self.sys_block)):
                if name.startswith("loop"):
                    backing = self._loop(name, "backing_file")
                    if backing:
                        self._backing[name] = backing
                        loops.setdefault(backing, []).append(name)
            self._loops = loops

    def _same_loop(self, name: str) -> List[str]:
        self.prepare()
        assert self._loops is not None
        others = [n for n in self._loops.get(self._backing.get(name, ""), ()) if n != name]
        if not others:
            return []
        where = (self._loop(name, "offset"), self._loop(name, "sizelimit"))
        return ["/dev/" + n for n in others
                if (self._loop(n, "offset"), self._loop(n, "sizelimit")) == where]

    def of(self, path: str, loops: bool = True) -> List[str]:
        """Sibling paths of `path`.  loops=False leaves out other loop
        devices over the same file, which only the index of every loop
        device on the host can tell (the multipath checks read the sysfs
        of `path` and its holders only)."""
        name = _block_name(path)
        base = os.path.join(self.sys_block, name)
        out = []
        if loops and name.startswith("loop"):
            out += self._same_loop(name)
        if name.startswith("dm-") and _read_sys(os.path.join(base, "dm", "uuid")).startswith("mpath-"):
            out += ["/dev/" + s for s in sorted(_listdir(os.path.join(base, "slaves")))]
        for holder in sorted(_listdir(os.path.join(base, "holders"))):
            if _read_sys(os.path.join(self.sys_block, holder, "dm", "uuid")).startswith("mpath-"):
                out.append("/dev/" + holder)
        return out


def _listdir(path: str) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
