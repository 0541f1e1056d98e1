"""The node_exporter textfile: the metrics of one `check`, written atomically."""

import os
import tempfile
from typing import Optional

from prometheus_client import CollectorRegistry, generate_latest

from .. import model


class TextfileError(Exception):
    """The textfile could not be written; str() is one line."""


def render_textfile(result: model.CheckResult, python: Optional[str] = None) -> bytes:
    """The metrics of one scan in the text exposition format."""
    from .collector import ScanStats, VgdriftCollector
    stats = ScanStats()
    stats.record(result)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(VgdriftCollector(stats, python=python))
    return generate_latest(registry)


def write_textfile(path: str, result: model.CheckResult) -> None:
    """Atomically replace `path` with the metrics of `result`.

    node_exporter may read the file at any moment, so it must never see a
    partial one: write a temp file in the same directory (rename is atomic
    only within a filesystem), fsync it, then rename over the target.  The
    temp name does not end in .prom, so node_exporter ignores it.
    """
    data = render_textfile(result)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory,
                                   prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        raise TextfileError("cannot write textfile %s: %s" % (path, e.strerror or e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # mkstemp makes 0600 files; node_exporter usually runs as another user.
            os.fchmod(f.fileno(), 0o644)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise TextfileError("cannot write textfile %s: %s" % (path, e.strerror or e)) from None
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; best effort, the data is already safe.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
