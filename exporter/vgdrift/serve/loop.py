"""The exporter's scan loop: one scan at a time, every interval, on its own
thread; a Scanner rebuilt only when the scan options change.

The loop must not die: a thread that dies leaves the last result exported
with vgdrift_last_scan_success 1 forever.  Any exception in a scan is a
failed scan (logged with its traceback the first time it happens); should
the thread die all the same, `on_death` tells the main thread, which stops
the exporter (and /-/ready goes 503 once the last scan is 5 intervals old)."""

import logging
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Set, Tuple

from .. import model
from .config import ServeConfig
from .scanstats import ScanStats

log = logging.getLogger("vgdrift.serve")

ScannerFactory = Callable[[ServeConfig], Any]   # -> object with scan() and close()
_UNKNOWN_REASONS = (model.REASON_CACHE, model.REASON_PERMISSION, model.REASON_INTERNAL)


class ScanLoop(threading.Thread):
    """Scans every `interval`, one scan at a time, with a Scanner rebuilt
    only when the scan options change.  Only this thread touches the Scanner."""

    def __init__(self, stats: ScanStats, factory: ScannerFactory, config: ServeConfig,
                 after_scan: Callable[[], None] = lambda: None,
                 on_death: Optional[Callable[[], None]] = None) -> None:
        super().__init__(name="vgdrift-scan", daemon=True)
        self._on_death = on_death
        self._failures_seen: Set[Tuple[str, str]] = set()
        self._stats = stats
        self._after_scan = after_scan
        self._factory = factory
        self._config = config
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._scanner: Any = None
        self._scanner_key: Any = None
        self._states: Dict[str, str] = {}
        self._unknown: Dict[str, model.UnknownVG] = {}
        self._errors: Dict[Tuple[str, str], model.ErrorItem] = {}

    @property
    def interval(self) -> float:
        return self._config.interval

    def update(self, config: ServeConfig) -> None:
        """New configuration: applied before the next scan, which starts now
        (or right after the one running)."""
        self._config = config
        self._wake.set()

    def stop(self, grace: float) -> None:
        self._stopping.set()
        self._wake.set()
        if self.ident is None:
            return                      # never started
        self.join(grace)
        if self.is_alive():
            # A scan is stuck past the grace time; closing the Scanner under
            # it is not safe, and this daemon thread dies with the process.
            log.warning("abandoning the running scan")
        elif self._scanner is not None:
            self._scanner.close()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                config = self._config
                started = time.monotonic()
                try:
                    self._scan(config)
                except Exception:             # e.g. in after_scan or logging: still a failed scan
                    self._failed(time.time(), 0.0)
                # Bounded (the flags are too): Event.wait raises OverflowError
                # beyond threading.TIMEOUT_MAX.
                wait = max(0.0, started + config.interval - time.monotonic())
                self._wake.wait(min(wait, threading.TIMEOUT_MAX, 86400.0))
                self._wake.clear()
        except BaseException:
            log.error("scan loop died", exc_info=True)
            raise
        finally:
            if not self._stopping.is_set() and self._on_death is not None:
                self._on_death()

    def _scan(self, config: ServeConfig) -> None:
        wall, t0 = time.time(), time.monotonic()
        try:
            key = _scan_key(config)
            if self._scanner is None or key != self._scanner_key:
                scanner = self._factory(config)
                if self._scanner is not None:
                    # Workers still blocked on a device outlive a reload: the
                    # new Scanner must know them, or it sends another read to
                    # the hung device (one more stuck worker per SIGHUP).
                    adopt = getattr(scanner, "adopt", None)
                    if adopt is not None:
                        adopt(self._scanner)
                    self._scanner.close()
                self._scanner, self._scanner_key = scanner, key
            result = self._scanner.scan()
        except Exception:
            # Scanner.scan() does not raise for bad input, so this is a bug;
            # keep serving and count it.
            self._failed(wall, time.monotonic() - t0)
            return
        if self._stopping.is_set():
            return
        exported = self._stats.record(result)
        self._after_scan()
        self._log_result(exported)

    def _failed(self, wall: float, duration: float) -> None:
        """A scan that raised: counted as failed (reason internal); the
        traceback is logged the first time an exception is seen, later
        repeats in one line."""
        exc = sys.exc_info()[1]
        key = (type(exc).__name__, str(exc))
        if key not in self._failures_seen:
            if len(self._failures_seen) < 100:
                self._failures_seen.add(key)
            log.error("scan failed", exc_info=True)
        else:
            log.error("scan failed again", extra={"err": "%s: %s" % key})
        self._stats.record_failure(wall, duration)
        try:
            self._after_scan()
        except Exception:
            log.debug("warming the exposition failed", exc_info=True)

    def _log_result(self, result: model.CheckResult) -> None:
        for vg in result.vgs:
            before = self._states.get(vg.name)
            if before != vg.state:
                # unknown: this node cannot tell; an error, logged once (on
                # the change), as every state change is.
                level = (logging.INFO if vg.state == model.IN_SYNC else
                         logging.ERROR if vg.state == model.UNKNOWN else logging.WARNING)
                log.log(level, "VG state", extra={"vg": vg.name, "state": vg.state,
                                                  "previous": before or "", "reason": vg.reason or "",
                                                  "cache_file": vg.cache.path})
        self._states = {vg.name: vg.state for vg in result.vgs}
        # VGs on this node's disks that no cache file describes (discovery):
        # logged when they appear and when they go (cached, or gone).
        unknown = {u.uuid: u for u in result.unknown_vgs}
        for uuid in unknown.keys() - self._unknown.keys():
            u = unknown[uuid]
            log.warning("VG unknown to this node", extra={"vg": u.name, "vg_uuid": uuid,
                                                          "creation_host": u.host, "seqno": u.seqno})
        for uuid in self._unknown.keys() - unknown.keys():
            log.info("VG no longer unknown to this node", extra={"vg": self._unknown[uuid].name, "vg_uuid": uuid})
        if len(unknown) <= 1000:
            self._unknown = unknown
        # Errors that make the answer unknown are logged when they start and
        # when they stop, not at every scan; the rest at debug level.
        current = {}
        for err in result.errors:
            if err.reason in _UNKNOWN_REASONS:
                current[(err.reason, err.where)] = err
            log.debug("scan error", extra={"reason": err.reason, "where": err.where, "err": err.message})
        for key in current.keys() - self._errors.keys():
            err = current[key]
            log.error("scan error", extra={"reason": err.reason, "where": err.where, "err": err.message})
        for key in self._errors.keys() - current.keys():
            log.info("scan error cleared", extra={"reason": key[0], "where": key[1]})
        if len(current) <= 1000:
            self._errors = current
        log.debug("scan finished", extra={"vgs": len(result.vgs), "errors": len(result.errors),
                                          "duration_seconds": round(result.duration_seconds, 6),
                                          "success": result.success})


def _scan_key(config: ServeConfig) -> tuple:
    return (config.cache_dirs, config.device_globs, config.vgs, config.exclude_vgs, config.timeout,
            config.lvm_system_dir, config.discovery_interval)
