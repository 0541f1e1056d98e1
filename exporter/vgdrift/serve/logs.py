"""Log formatting for `serve`: logfmt or JSON lines on stderr, like other
Prometheus exporters.  Extra key/values go in `extra={...}` and become
fields of the line."""

import json
import logging
import sys
import time
import traceback
from typing import Any, Dict, Optional, TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO,
          "warn": logging.WARNING, "error": logging.ERROR}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
                logging.ERROR: "error", logging.CRITICAL: "error"}
# Attributes every LogRecord has; anything else came in through `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> Dict[str, Any]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields = {
        "ts": "%s.%03dZ" % (ts, int(record.msecs)),
        "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = "%s: %s" % (type(record.exc_info[1]).__name__, record.exc_info[1])
        fields["trace"] = "".join(traceback.format_exception(*record.exc_info))
    return fields


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"')
                     .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join("%s=%s" % (k, _logfmt_value(v)) for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def setup_logging(level: str = "info", fmt: str = "logfmt",
                  stream: Optional[TextIO] = None) -> None:
    """Configure the "vgdrift" logger; safe to call again (SIGHUP)."""
    logger = logging.getLogger("vgdrift")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    logger.addHandler(handler)
    logger.setLevel(LEVELS[level])
    # Our lines have their own format; don't repeat them through the root logger.
    logger.propagate = False
