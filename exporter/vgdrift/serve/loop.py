"""The exporter's scan loop: one scan at a time, every interval, on its own
thread; a Scanner rebuilt only when the scan options change."""

import logging
import threading
import time
from typing import Any, Callable, Dict

from .. import model
from .collector import ScanStats
from .config import ServeConfig

log = logging.getLogger("vgdrift.serve")

ScannerFactory = Callable[[ServeConfig], Any]   # -> object with scan() and close()


class ScanLoop(threading.Thread):
    """Scans every `interval`, one scan at a time, with a Scanner rebuilt
    only when the scan options change.  Only this thread touches the Scanner."""

    def __init__(self, stats: ScanStats, factory: ScannerFactory, config: ServeConfig,
                 after_scan: Callable[[], None] = lambda: None) -> None:
        super().__init__(name="vgdrift-scan", daemon=True)
        self._stats = stats
        self._after_scan = after_scan
        self._factory = factory
        self._config = config
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._scanner: Any = None
        self._scanner_key: Any = None
        self._states: Dict[str, str] = {}

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
        while not self._stopping.is_set():
            config = self._config
            started = time.monotonic()
            self._scan(config)
            self._wake.wait(max(0.0, started + config.interval - time.monotonic()))
            self._wake.clear()

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
            log.error("scan failed", exc_info=True)
            self._stats.record_failure(wall, time.monotonic() - t0)
            self._after_scan()
            return
        if self._stopping.is_set():
            return
        self._stats.record(result)
        self._after_scan()
        self._log_result(result)

    def _log_result(self, result: model.CheckResult) -> None:
        for vg in result.vgs:
            before = self._states.get(vg.name)
            if before != vg.state:
                level = logging.INFO if vg.state == model.IN_SYNC else logging.WARNING
                log.log(level, "VG state", extra={"vg": vg.name, "state": vg.state,
                                                  "previous": before or "", "reason": vg.reason or ""})
        self._states = {vg.name: vg.state for vg in result.vgs}
        for err in result.errors:
            log.debug("scan error", extra={"reason": err.reason, "where": err.where, "err": err.message})
        log.debug("scan finished", extra={"vgs": len(result.vgs), "errors": len(result.errors),
                                          "duration_seconds": round(result.duration_seconds, 6),
                                          "success": result.success})


def _scan_key(config: ServeConfig) -> tuple:
    return (config.cache_dirs, config.device_globs, config.vgs, config.exclude_vgs, config.timeout)
