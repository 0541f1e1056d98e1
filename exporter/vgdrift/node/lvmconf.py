"""This node's LVM configuration: the keys of lvm.conf and lvmlocal.conf
that decide whether its LVM sees, owns and activates a VG.

Read the way LVM 2.03 reads them (lib/config, libdm-config):
- The directory is $LVM_SYSTEM_DIR, else /etc/lvm; LVM_SYSTEM_DIR="" means
  no configuration files at all.
- A section written twice is one section; a value written twice keeps the
  later one (LVM says "Ignoring duplicate config value" and yet keeps the
  later: checked with lvmconfig).
- lvmlocal.conf is read over lvm.conf, key by key, in any section.
- Built-in defaults that depend on how LVM was built (use_devicesfile: 0 on
  Debian 12, 1 on RHEL 9) come from `lvmconfig --typeconfig default`, the
  one LVM command that reads no device and writes nothing.

Not read: profiles, --config, and the lvm_<tag>.conf files of host tags
(a `tags` section is reported as a warning).
"""

import os
import re
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .. import textmeta
from ..textmeta import TextError

DEFAULT_SYSTEM_DIR = "/etc/lvm"
LVM_CONF = "lvm.conf"
LVMLOCAL_CONF = "lvmlocal.conf"
# A configuration file is a few tens of KiB; a larger one is not one.
MAX_FILE = 16 << 20
LVMCONFIG_TIMEOUT = 10.0

# Where a value came from.
FROM_LVM_CONF = "lvm.conf"
FROM_LVMLOCAL = "lvmlocal.conf"
FROM_LVMCONFIG = "lvmconfig default"
FROM_BUILTIN = "built-in default"
FROM_UNKNOWN = "unknown"          # build-dependent and lvmconfig could not say

# Keys whose built-in default depends on the build: asked of lvmconfig.
BUILD_DEPENDENT = ("devices/use_devicesfile",)

# LVM's default filter (lvmconfig prints it): every device accepted.  A
# list set but empty is another thing: LVM refuses it (filters.py).
FILTER_DEFAULT: Tuple[str, ...] = ("a|.*|",)


class ConfigError(Exception):
    """lvm.conf or lvmlocal.conf unusable: names the file, the line and why."""


def system_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """LVM's system directory: $LVM_SYSTEM_DIR (even when empty), else
    /etc/lvm."""
    env = os.environ if env is None else env
    value = env.get("LVM_SYSTEM_DIR")
    return DEFAULT_SYSTEM_DIR if value is None else value


# ------------------------------------------------------------ the grammar

def parse_config(data, source: str) -> Tuple[dict, Tuple[str, ...]]:
    """LVM config text -> (nested dicts, warnings): textmeta's parser (the
    same grammar as the metadata text) in its configuration mode, which
    reads single-quoted strings and merges a section or value written
    twice as LVM does."""
    warnings: List[str] = []
    tree = textmeta.parse(data, source, config=True, warnings=warnings)
    return tree, tuple(warnings)


def _read(path: str) -> Optional[Tuple[dict, Tuple[str, ...], tuple]]:
    """(tree, warnings, stat key) of one file, None when it does not exist."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_FILE:
        raise ConfigError(f"{path}: larger than {MAX_FILE >> 20} MiB: not an LVM configuration file")
    try:
        tree, warnings = parse_config(data, path)
    except TextError as e:
        raise ConfigError(str(e)) from None
    return tree, warnings, _stat_key(st)


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------ the values

class NodeLVM(NamedTuple):
    """The configuration keys that matter, with where each came from.
    Lists are tuples of the raw values (a filter entry that is not a string
    is LVM's error to report, see filters.py).  An unset filter is LVM's
    default ("a|.*|",); () is a filter set but empty, which LVM refuses.
    None in auto_activation_volume_list / volume_list means unset
    (everything), () set but empty (nothing)."""
    system_dir: str
    files: Tuple[str, ...]                 # the files read, lvm.conf first
    use_devicesfile: Optional[bool]        # None: unknown (lvmconfig failed)
    devices_file: str                      # path, whether or not it exists
    filter: Tuple[object, ...]
    global_filter: Tuple[object, ...]
    system_id_source: str
    system_id_file: str
    local_system_id: str                   # local/system_id as written
    extra_system_ids: Tuple[str, ...]
    auto_activation_volume_list: Optional[Tuple[object, ...]]
    volume_list: Optional[Tuple[object, ...]]   # activation/volume_list: gates -aay too
    backup_dir: str
    etc_dir: str                           # global/etc, where machine-id is
    host_tags: bool                        # a `tags` section: lvm_<tag>.conf not read
    sources: Tuple[Tuple[str, str], ...]   # (key, where its value came from)
    warnings: Tuple[str, ...] = ()

    def source(self, key: str) -> str:
        return dict(self.sources).get(key, FROM_BUILTIN)


def _lookup(trees: Sequence[Tuple[str, dict]], key: str):
    """(value, origin) of `section/name`: lvmlocal.conf over lvm.conf."""
    section, name = key.split("/")
    found: Tuple[object, Optional[str]] = (None, None)
    for origin, tree in trees:
        sec = tree.get(section)
        if isinstance(sec, dict) and name in sec:
            found = (sec[name], origin)
    return found


_TRUE = ("y", "yes", "on", "true")
_FALSE = ("n", "no", "off", "false")


def _bool(value) -> Optional[bool]:
    """LVM's reading of a boolean: an int (0 false), one of the words
    (any case), or an array whose first value is one; None: LVM ignores it
    and uses the default."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    return None


def _str(value) -> Optional[str]:
    """LVM's reading of a string setting: a non-empty string (the first
    value of an array); None: LVM ignores it and uses the default."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _list(value) -> Tuple[object, ...]:
    if isinstance(value, list):
        return tuple(value)
    return (value,)


# LVM's validate_name, which the devices file name must pass.
_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.\-]{0,126}\Z", re.ASCII)
_DEFAULT_LINE = re.compile(r"^\s*#?\s*(\w+)\s*=(.*)$")


def lvmconfig_defaults(keys: Sequence[str], env: Optional[Mapping[str, str]] = None,
                       run: Optional[Callable] = None) -> Tuple[Dict[str, object], Optional[str]]:
    """The build's defaults for `keys`: ({key: value}, error or None).
    Runs `lvmconfig --typeconfig default KEY...` with LVM_SYSTEM_DIR=""
    so that no configuration file (possibly one LVM cannot parse) is read
    either; no shell, with a timeout."""
    env = dict(os.environ if env is None else env)
    env.update({"LVM_SYSTEM_DIR": "", "LVM_SUPPRESS_FD_WARNINGS": "1", "LC_ALL": "C"})
    # Imported here: a check whose lvm.conf sets the key never pays for it.
    import subprocess
    cmd = ["lvmconfig", "--typeconfig", "default", *keys]
    run = run or subprocess.run
    try:
        r = run(cmd, env=env, capture_output=True, text=True, timeout=LVMCONFIG_TIMEOUT,
                stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return {}, "lvmconfig not found"
    except subprocess.TimeoutExpired:
        return {}, f"lvmconfig did not answer within {LVMCONFIG_TIMEOUT:g}s"
    except OSError as e:
        return {}, f"cannot run lvmconfig: {e.strerror or e}"
    if r.returncode != 0:
        why = (r.stderr or "").strip().splitlines()
        return {}, f"lvmconfig exited {r.returncode}" + (f": {why[-1].strip()}" if why else "")
    out: Dict[str, object] = {}
    names = {k.split("/")[-1]: k for k in keys}
    for line in (r.stdout or "").splitlines():
        m = _DEFAULT_LINE.match(line)
        if not m or m.group(1) not in names:
            continue
        try:
            tree, _ = parse_config(f"{m.group(1)}={m.group(2)}", "lvmconfig")
        except TextError:
            continue
        out[names[m.group(1)]] = tree[m.group(1)]
    missing = [k for k in keys if k not in out]
    return out, (f"lvmconfig printed no default for {', '.join(missing)}" if missing else None)


def build(sysdir: str, trees: Sequence[Tuple[str, dict]], files: Sequence[str] = (),
          warnings: Sequence[str] = (), defaults: Optional[Callable] = None) -> NodeLVM:
    """The NodeLVM of parsed trees [(origin, tree)], lvm.conf first.
    `defaults(keys) -> ({key: value}, error)` gives build-dependent
    defaults (lvmconfig_defaults unless told)."""
    warns = list(warnings)
    sources: Dict[str, str] = {}

    def get(key, convert, default, what=None):
        raw, origin = _lookup(trees, key)
        if origin is not None:
            value = convert(raw)
            if value is not None:
                sources[key] = origin
                return value
            warns.append(f"{origin}: {key} = {textmeta.show(raw)} is not {what}; "
                         f"LVM ignores it and uses the default")
        sources[key] = FROM_BUILTIN
        return default

    # use_devicesfile: the build's default when not set (or set to junk).
    raw, origin = _lookup(trees, "devices/use_devicesfile")
    use_df: Optional[bool] = _bool(raw) if origin else None
    if origin and use_df is not None:
        sources["devices/use_devicesfile"] = origin
    else:
        if origin:
            warns.append(f"{origin}: devices/use_devicesfile = {textmeta.show(raw)} is not a "
                         f"boolean; LVM ignores it and uses the default")
        got, err = (defaults or lvmconfig_defaults)(BUILD_DEPENDENT)
        use_df = _bool(got["devices/use_devicesfile"]) if "devices/use_devicesfile" in got else None
        if use_df is None:
            sources["devices/use_devicesfile"] = FROM_UNKNOWN
            warns.append(f"devices/use_devicesfile: the build's default is unknown ({err or 'no value'})")
        else:
            sources["devices/use_devicesfile"] = FROM_LVMCONFIG

    df_name = get("devices/devicesfile", _str, "system.devices", "a file name")
    if use_df and (not _NAME.match(df_name) or df_name in (".", "..")):
        # LVM checks it as it checks a VG name and then refuses to run.
        origin = os.path.join(sysdir, sources["devices/devicesfile"])
        raise ConfigError(f"{origin}: devices/devicesfile = {df_name!r}: LVM accepts only a file name "
                          f"of A-Z a-z 0-9 + _ . - (not starting with '-'), and runs no command otherwise")
    filt = get("devices/filter", _list, FILTER_DEFAULT)
    gfilt = get("devices/global_filter", _list, FILTER_DEFAULT)
    source = get("global/system_id_source", _str, "none", "a string")
    sid_file = get("global/system_id_file", _str, "", "a string")
    etc = get("global/etc", _str, "/etc", "a string")
    local_sid = get("local/system_id", lambda v: v if isinstance(v, str) else None, "", "a string")
    extra = get("local/extra_system_ids",
                lambda v: tuple(x for x in _list(v) if isinstance(x, str)), ())

    def volumes(key: str) -> Optional[Tuple[object, ...]]:
        # None when unset (every LV), () when set but empty (none).
        raw, origin = _lookup(trees, key)
        sources[key] = origin or FROM_BUILTIN
        return None if origin is None else _list(raw)

    auto = volumes("activation/auto_activation_volume_list")
    vlist = volumes("activation/volume_list")
    backup = get("backup/backup_dir", _str, f"{sysdir}/backup", "a directory")
    host_tags = any(isinstance(t.get("tags"), dict) and t["tags"] for _, t in trees)
    if host_tags:
        warns.append("a tags section is set: LVM may also read lvm_<tag>.conf files, "
                     "which vgdrift does not")
    return NodeLVM(
        system_dir=sysdir, files=tuple(files), use_devicesfile=use_df,
        devices_file=os.path.join(sysdir + "/devices", df_name),
        filter=filt, global_filter=gfilt, system_id_source=source,
        system_id_file=sid_file, local_system_id=local_sid, extra_system_ids=extra,
        auto_activation_volume_list=auto, volume_list=vlist, backup_dir=backup, etc_dir=etc,
        host_tags=host_tags, sources=tuple(sorted(sources.items())), warnings=tuple(warns))


def read(sysdir: Optional[str] = None, defaults: Optional[Callable] = None) -> NodeLVM:
    """Reads DIR/lvm.conf and DIR/lvmlocal.conf (either may be absent).
    Raises ConfigError for a file that cannot be read or parsed."""
    return _load(system_dir() if sysdir is None else sysdir, defaults)[0]


def _load(sysdir: str, defaults: Optional[Callable]) -> Tuple[NodeLVM, tuple]:
    trees: List[Tuple[str, dict]] = []
    files: List[str] = []
    warnings: List[str] = []
    keys: List[Optional[tuple]] = []
    for name, origin in ((LVM_CONF, FROM_LVM_CONF), (LVMLOCAL_CONF, FROM_LVMLOCAL)):
        if not sysdir:        # LVM_SYSTEM_DIR="": LVM reads no file
            keys.append(None)
            continue
        path = os.path.join(sysdir, name)
        got = _read(path)
        keys.append(got[2] if got else None)
        if got:
            trees.append((origin, got[0]))
            files.append(path)
            warnings.extend(got[1])
    return build(sysdir, trees, files, warnings, defaults), tuple(keys)


def _stat_or_none(path: str) -> Optional[tuple]:
    try:
        return _stat_key(os.stat(path))
    except OSError:
        return None


class ConfigCache:
    """For `serve`: re-reads the configuration only when lvm.conf's or
    lvmlocal.conf's (device, inode, size, mtime) changed, or a file came or
    went.  The build's defaults are asked of lvmconfig once per cache."""

    def __init__(self, sysdir: Optional[str] = None, defaults: Optional[Callable] = None):
        self.sysdir = system_dir() if sysdir is None else sysdir
        self._defaults = defaults or lvmconfig_defaults
        self._memo: Dict[tuple, Tuple[Dict[str, object], Optional[str]]] = {}
        self._keys: Optional[tuple] = None
        self._value: Optional[NodeLVM] = None
        self.reads = 0              # how many times the files were parsed

    def _cached_defaults(self, keys):
        keys = tuple(keys)
        if keys not in self._memo:
            got = self._defaults(keys)
            if got[1] is not None and not got[0]:
                return got        # a failure is not remembered: try again next time
            self._memo[keys] = got
        return self._memo[keys]

    def get(self) -> NodeLVM:
        """The current NodeLVM; raises ConfigError (and forgets the old
        value) when a changed file is unusable."""
        keys = tuple(_stat_or_none(os.path.join(self.sysdir, n)) if self.sysdir else None
                     for n in (LVM_CONF, LVMLOCAL_CONF))
        if self._value is not None and keys == self._keys:
            return self._value
        self._value = self._keys = None
        value, read_keys = _load(self.sysdir, self._cached_defaults)
        self.reads += 1
        self._value, self._keys = value, read_keys
        return value
