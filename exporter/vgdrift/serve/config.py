"""The `serve` configuration: YAML file (--config.file) merged with flags.

Flags override the file, the file overrides the defaults.  Every problem is a
`ConfigError` whose message is one line naming the file and the key, so that
`serve` can refuse to start (or a SIGHUP reload can be refused) with a
message an operator can act on.
"""

import math
import re
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple

import yaml

from .listen import parse_listen_address

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


class ConfigError(Exception):
    """Invalid configuration; str() is one line."""


@dataclass(frozen=True)
class ServeConfig:
    # () = backup/backup_dir of this node's LVM configuration (DEFAULT_DIR
    # unless its lvm.conf says otherwise).
    cache_dirs: Tuple[str, ...] = ()
    device_globs: Tuple[str, ...] = ()     # () = every block device
    vgs: Tuple[str, ...] = ()              # () = every cached VG
    exclude_vgs: Tuple[str, ...] = ()
    interval: float = 30.0
    # Discovery of VGs no cache file describes (issue 11): seconds, 0 = never.
    discovery_interval: float = 600.0
    timeout: float = 10.0
    listen_address: str = ":9867"
    telemetry_path: str = "/metrics"
    web_config_file: Optional[str] = None
    log_level: str = "info"
    log_format: str = "logfmt"
    config_file: Optional[str] = None
    lvm_system_dir: Optional[str] = None   # None = $LVM_SYSTEM_DIR, else /etc/lvm


# --- value parsers: raise ValueError with a message that follows "key: " ---

_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(value: Any) -> float:
    """Seconds from a Prometheus duration ("1m30s", "500ms") or a number of
    seconds; must be positive."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, got %r" % value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if not value.strip() or not m:
            raise ValueError("invalid duration %r (use e.g. 30s, 1m, 500ms)" % value)
        try:
            seconds = float(sum(int(n) * unit for n, unit in zip(m.groups(), _DURATION_UNITS) if n))
        except (OverflowError, ValueError):     # more digits than a float holds
            raise ValueError("duration %r is too large" % value) from None
    else:
        raise ValueError("expected a duration such as 30s, got %s" % type(value).__name__)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("duration must be positive, got %r" % value)
    return seconds


# Bounds: a scan interval beyond a day, or a device timeout beyond an hour,
# is a typo, and unbounded values overflow the thread waits (a scan loop
# that died of OverflowError kept serving its first scan as current).
MIN_INTERVAL, MAX_INTERVAL = 0.1, 86400.0
MAX_TIMEOUT = 3600.0


def parse_interval(value: Any) -> float:
    """--scan.interval / scan.interval: a duration from 100ms to 24h."""
    seconds = parse_duration(value)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ValueError("scan interval must be between 100ms and 24h, got %r" % value)
    return seconds


def parse_discovery_interval(value: Any) -> float:
    """--discovery.interval / discovery.interval: 0 (never), or a duration
    from 100ms to 24h."""
    if value == 0 or (isinstance(value, str) and value.strip() in ("0", "0s")):
        if not isinstance(value, bool):
            return 0.0
    seconds = parse_duration(value)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ValueError("discovery interval must be 0 (never) or between 100ms and 24h, got %r" % value)
    return seconds


def parse_timeout(value: Any) -> float:
    """--timeout / scan.timeout: a positive duration up to 1h."""
    seconds = parse_duration(value)
    if seconds > MAX_TIMEOUT:
        raise ValueError("timeout must be at most 1h (3600 s), got %r" % value)
    return seconds


def check_listen_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string like :9867, got %s" % type(value).__name__)
    parse_listen_address(value)
    return value


def check_telemetry_path(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a path like /metrics, got %s" % type(value).__name__)
    # "/" is the landing page and "/-/" holds the health endpoints.
    if not value.startswith("/") or value == "/" or value.startswith("/-/") or "?" in value:
        raise ValueError("must be a path like /metrics, got %r" % value)
    return value


def check_log_level(value: Any) -> str:
    level = "warn" if value == "warning" else value
    if level not in LOG_LEVELS:
        raise ValueError("must be one of %s, got %r" % (", ".join(LOG_LEVELS), value))
    return level


def check_log_format(value: Any) -> str:
    if value not in LOG_FORMATS:
        raise ValueError("must be one of %s, got %r" % (", ".join(LOG_FORMATS), value))
    return value


def check_lvm_system_dir(value: Any) -> str:
    # "" is allowed: LVM_SYSTEM_DIR="" means no configuration files at all.
    if not isinstance(value, str):
        raise ValueError("expected a directory path, got %r" % (value,))
    return value


def _str_list(value: Any, allow_empty: bool = True) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("expected a list of non-empty strings")
    if not value and not allow_empty:
        raise ValueError("must not be empty")
    return tuple(value)


# --- the file ---------------------------------------------------------------

# YAML key -> (ServeConfig field, parser); nested sections use "a.b" keys.
_FILE_KEYS = {
    "cache_dirs": ("cache_dirs", lambda v: _str_list(v, allow_empty=False)),
    "devices": ("device_globs", _str_list),
    "vgs.include": ("vgs", _str_list),
    "vgs.exclude": ("exclude_vgs", _str_list),
    "scan.interval": ("interval", parse_interval),
    "scan.timeout": ("timeout", parse_timeout),
    "discovery.interval": ("discovery_interval", parse_discovery_interval),
    "web.listen_address": ("listen_address", check_listen_address),
    "web.telemetry_path": ("telemetry_path", check_telemetry_path),
    "log.level": ("log_level", check_log_level),
    "log.format": ("log_format", check_log_format),
    "lvm_system_dir": ("lvm_system_dir", check_lvm_system_dir),
}
_SECTIONS = {key.split(".")[0] for key in _FILE_KEYS if "." in key}


def load_file(path: str) -> Dict[str, Any]:
    """The ServeConfig fields set by the YAML file at `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e.strerror or e)) from None
    except UnicodeDecodeError:
        raise ConfigError("config file %s: not UTF-8 text" % path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise ConfigError("config file %s: invalid YAML%s: %s" % (path, where, problem)) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("config file %s: expected a mapping at the top level" % path)

    flat: Dict[str, Any] = {}
    for key, value in doc.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError("config file %s: %s: expected a mapping" % (path, key))
            for sub, subvalue in value.items():
                flat["%s.%s" % (key, sub)] = subvalue
        else:
            flat[str(key)] = value

    values: Dict[str, Any] = {}
    for key, value in flat.items():
        if key not in _FILE_KEYS:
            raise ConfigError("config file %s: unknown key %s" % (path, key))
        name, parse = _FILE_KEYS[key]
        try:
            values[name] = parse(value)
        except ValueError as e:
            raise ConfigError("config file %s: %s: %s" % (path, key, e)) from None
    return values


# --- flags ------------------------------------------------------------------

# args attribute -> ServeConfig field.  The shared check/serve flags come from
# cli.py; the others from serve.add_serve_arguments (already parsed/validated
# by their argparse `type=`).
_FLAG_FIELDS = {
    "cache_dir": "cache_dirs",
    "devices": "device_globs",
    "vg": "vgs",
    "exclude_vg": "exclude_vgs",
    "timeout": "timeout",
    "scan_interval": "interval",
    "discovery_interval": "discovery_interval",
    "web_listen_address": "listen_address",
    "web_telemetry_path": "telemetry_path",
    "web_config_file": "web_config_file",
    "log_level": "log_level",
    "log_format": "log_format",
    "config_file": "config_file",
    "lvm_system_dir": "lvm_system_dir",
}


def _flag_values(args: Any) -> Dict[str, Any]:
    values = {}
    for attr, name in _FLAG_FIELDS.items():
        value = getattr(args, attr, None)
        if value is None:
            continue                      # not given: the file or the default applies
        if isinstance(value, list):
            value = tuple(value)
        values[name] = value
    if "timeout" in values:
        try:
            values["timeout"] = parse_timeout(values["timeout"])
        except ValueError as e:
            raise ConfigError("flag --timeout: %s" % e) from None
    return values


def load_config(args: Any) -> ServeConfig:
    """Defaults, then the --config.file, then flags.  Called again on SIGHUP
    with the same args, so flags keep overriding a reloaded file."""
    path = getattr(args, "config_file", None)
    values = load_file(path) if path else {}
    values.update(_flag_values(args))
    known = {f.name for f in fields(ServeConfig)}
    return ServeConfig(**{k: v for k, v in values.items() if k in known})
