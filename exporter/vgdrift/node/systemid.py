"""This node's LVM system ID, as `lvm systemid` prints it (lvmsystemid(7);
LVM 2.03.16 lib/commands/toolcontext.c, _init_system_id).

- global/system_id_source (lvm.conf or lvmlocal.conf): "none" (the exact
  word), or, in any case: "lvmlocal" (local/system_id), "uname" (the node
  name), "machineid"/"machine-id" (global/etc + /machine-id), "file" (the
  first line of global/system_id_file that is neither blank nor a comment),
  "appmachineid" (a hash computed through systemd: unknown to vgdrift).
- Every value goes through LVM's normalisation: leading characters that
  are not ASCII letters or digits dropped, then every character other than
  letters, digits and . _ - + dropped, at most 128 kept; empty, or
  beginning with "localhost", means none.
- A source that yields nothing leaves the node with no system ID: it can
  use VGs without one, never a VG with one.
"""

import os
from typing import Callable, NamedTuple, Optional, Tuple

NAME_LEN = 128
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_KEEP = _ALNUM | frozenset(b"._-+")
MAX_FILE = 1 << 20

# How the local system ID is known.
KNOWN = "known"          # value is the ID, "" meaning none
UNKNOWN = "unknown"      # vgdrift cannot compute it (appmachineid)


def normalise(raw) -> str:
    """LVM's copy_systemid_chars plus its refusals: "" for none."""
    data = os.fsencode(raw) if isinstance(raw, str) else bytes(raw)
    i = 0
    while i < len(data) and data[i] not in _ALNUM:
        i += 1
    out = bytes(c for c in data[i:] if c in _KEEP)[:NAME_LEN].decode("ascii")
    if out.startswith("localhost"):
        return ""
    return out


class LocalSystemID(NamedTuple):
    source: str                 # system_id_source as configured
    value: Optional[str]        # the ID; "" none; None unknown
    warnings: Tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.value is not None


def _from_file(path: str, read: Callable[[str], bytes], what: str) -> Tuple[str, Tuple[str, ...]]:
    """LVM's reading of a system ID file: lines that are blank or start
    (after blanks) with '#' are skipped, a '#' ends a line; the first line
    that normalises to a system ID is it (a line that does not is passed
    over)."""
    if not path:
        return "", (f"{what}: no file configured (global/system_id_file)",)
    try:
        data = read(path)
    except OSError as e:
        return "", (f"{what}: cannot read {path}: {e.strerror or e}",)
    for line in data.split(b"\n"):
        s = line.lstrip(b" \t\r\f\v")
        if not s or s.startswith(b"#"):
            continue
        value = normalise(s.split(b"#", 1)[0])
        if value:
            return value, ()
    return "", (f"{what}: {path} holds no valid system ID",)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_FILE)


def local_system_id(source: str, local_system_id: str = "", system_id_file: str = "",
                    etc_dir: str = "/etc", nodename: Optional[str] = None,
                    read: Callable[[str], bytes] = _read_file) -> LocalSystemID:
    """This node's system ID from the configuration (NodeLVM fields).
    `nodename` defaults to uname's; `read` reads a file (for tests)."""
    warns = []
    if local_system_id and source != "lvmlocal":
        warns.append(f'local/system_id is set but ignored: system_id_source is "{source}", '
                     f'not "lvmlocal"')
    if source == "none":
        return LocalSystemID(source, "", tuple(warns))
    src = source.lower()
    value = ""
    if src == "uname":
        node = os.uname().nodename if nodename is None else nodename
        value = normalise(node)
    elif src == "lvmlocal":
        value = normalise(local_system_id)
    elif src == "appmachineid":
        return LocalSystemID(source, None, tuple(warns) + (
            "system_id_source appmachineid: LVM derives it through systemd; vgdrift cannot",))
    elif src in ("machineid", "machine-id"):
        value, w = _from_file(f"{etc_dir}/machine-id", read, "system_id_source machineid")
        warns.extend(w)
    elif src == "file":
        value, w = _from_file(system_id_file, read, "system_id_source file")
        warns.extend(w)
    else:
        warns.append(f'unrecognised system_id_source "{source}": LVM uses no system ID')
    if not value:
        warns.append(f"no system ID found from system_id_source {source}")
    return LocalSystemID(source, value, tuple(warns))
