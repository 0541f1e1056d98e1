"""`vgdrift serve`: the Prometheus exporter process.

A background thread rescans every interval with one long-lived Scanner
(spawned workers, so a hung disk never blocks the server); scrapes serve the
last completed scan.  SIGTERM/SIGINT stop promptly, even in the middle of a
scan; SIGHUP reloads the config and web config files, keeping the old ones
if the new ones are invalid.
"""

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Callable, Optional, Union

from prometheus_client import CollectorRegistry, ProcessCollector

from .. import model
from .config import (
    ConfigError,
    ServeConfig,
    check_listen_address,
    check_log_format,
    check_log_level,
    check_telemetry_path,
    load_config,
    parse_discovery_interval,
    parse_interval,
)
from .exposition import Exposition
from .logs import setup_logging
from .loop import ScanLoop, ScannerFactory
from .scanstats import ScanStats
from .server import Refusals, RefusalsCollector, Settings, make_server
from .webconfig import load_web_config

log = logging.getLogger("vgdrift.serve")

EXIT_OK = 0
EXIT_RUNTIME = 1      # could not listen, or the server died
EXIT_CONFIG = model.EXIT_UNKNOWN   # invalid configuration at start: 3, as cli.py's usage errors

STOP_GRACE = 1.0      # seconds a running scan gets to finish when stopping



def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve-only flags.  Defaults are None so that a flag that was not
    given does not override the config file; the real defaults live in
    config.ServeConfig."""
    add = parser.add_argument
    add("--web.listen-address", dest="web_listen_address", metavar="[HOST]:PORT",
        type=_flag(check_listen_address), help="address to listen on (default :9867)")
    add("--web.telemetry-path", dest="web_telemetry_path", metavar="PATH",
        type=_flag(check_telemetry_path), help="path of the metrics (default /metrics)")
    add("--web.config.file", dest="web_config_file", metavar="FILE",
        help="exporter-toolkit web config file: TLS and basic auth")
    add("--config.file", dest="config_file", metavar="FILE", help="YAML configuration file")
    add("--log.level", dest="log_level", metavar="{debug,info,warn,error}",
        type=_flag(check_log_level), help="log level (default info)")
    add("--log.format", dest="log_format", metavar="{logfmt,json}",
        type=_flag(check_log_format), help="log format (default logfmt)")
    add("--scan.interval", dest="scan_interval", metavar="DURATION",
        type=_flag(parse_interval), help="time between scans, 100ms to 24h, e.g. 30s, 1m (default 30s)")
    add("--discovery.interval", dest="discovery_interval", metavar="DURATION",
        type=_flag(parse_discovery_interval),
        help="time between discoveries of VGs that no cache file describes (one label read per "
             "candidate device, in a scan), 0 = never (default 10m)")


def _flag(check: Callable[[Any], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = check.__name__
    return parse


def serve_main(args: argparse.Namespace) -> int:
    """Entry point for `vgdrift serve` (called by cli.py)."""
    try:
        config = load_config(args)
    except ConfigError as e:
        print("vgdrift serve: %s" % e, file=sys.stderr)
        return EXIT_CONFIG
    return run_serve(config, reload_config=lambda: load_config(args))


def default_scanner(config: ServeConfig) -> Any:
    # Imported here so that the exporter's other modules do not depend on
    # the disk side being importable (and tests can inject a fake).
    from ..scan import Scanner
    return Scanner(scan_options(config), isolation="spawn")


def scan_options(config: ServeConfig) -> Any:
    from ..node.lvmconf import system_dir
    from ..scan import ScanOptions
    # The LVM configuration is read by the Scanner, once per scan, parsed
    # again only when lvm.conf or lvmlocal.conf changes (lvmconf.ConfigCache).
    return ScanOptions(cache_dirs=config.cache_dirs, device_globs=config.device_globs,
                       vgs=config.vgs, exclude_vgs=config.exclude_vgs, timeout=config.timeout,
                       discovery_interval=config.discovery_interval,
                       lvm_system_dir=system_dir() if config.lvm_system_dir is None else config.lvm_system_dir)


def build_exposition(stats: ScanStats) -> Exposition:
    live = CollectorRegistry(auto_describe=True)
    # process_* come from /proc/self: no disk I/O, and they show a leaking
    # or fd-hungry exporter.
    ProcessCollector(registry=live)
    refusals = Refusals()
    live.register(RefusalsCollector(refusals))
    exposition = Exposition(stats, live)
    exposition.refusals = refusals      # the server counts into it
    return exposition


def check_worker_interpreter(timeout: float = 60.0) -> str:
    """"" if this Python can be run the way the scan worker is spawned (it
    runs `sys.executable -m vgdrift.disk.worker`), else a one-line reason.
    A service user that may not execute the interpreter (a pyenv Python
    under /root) would otherwise fail every scan as `internal`."""
    from ..disk.worker import PACKAGE_PARENT
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    argv = [sys.executable, "-c", "import vgdrift.disk.worker"]
    try:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, close_fds=True)
    except OSError as e:
        return "cannot execute the Python interpreter %s for the device reader: %s (the service " \
               "user needs execute access to it and its directories; install vgdrift under a " \
               "system Python)" % (sys.executable, e.strerror or e)
    except subprocess.TimeoutExpired:
        return "the device reader (%s -m vgdrift.disk.worker) did not start within %.0f s" % (
            sys.executable, timeout)
    if proc.returncode != 0:
        last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["exit status %d"
                                                                               % proc.returncode])[-1]
        return "the device reader cannot start with %s: %s" % (sys.executable, last[:300])
    return ""


def run_serve(config: ServeConfig, scanner_factory: ScannerFactory = default_scanner,
              reload_config: Optional[Callable[[], ServeConfig]] = None,
              preflight: Optional[Callable[[], str]] = None) -> int:
    """Run the exporter until SIGTERM/SIGINT; returns the exit status.

    Must run in the main thread (signal handling).  `reload_config` is what
    SIGHUP calls to get the new configuration.  `preflight` returns "" or
    why the exporter cannot work (default: with the real scanner, whether
    the worker's interpreter can be executed).
    """
    setup_logging(config.log_level, config.log_format)
    try:
        web = load_web_config(config.web_config_file)
    except ConfigError as e:
        print("vgdrift serve: %s" % e, file=sys.stderr)
        return EXIT_CONFIG
    if preflight is None and scanner_factory is default_scanner:
        preflight = check_worker_interpreter
    problem = preflight() if preflight is not None else ""
    if problem:
        print("vgdrift serve: %s" % problem, file=sys.stderr)
        return EXIT_CONFIG
    stats = ScanStats()
    exposition = build_exposition(stats)
    loop_ref: list = []

    def not_ready() -> Union[bool, str]:
        # Stale when the last scan is older than 5 intervals: the loop is
        # stuck or dead, and the exported state is old.
        interval = loop_ref[0].interval if loop_ref else config.interval
        return stats.readiness(interval) or True

    try:
        server = make_server(config.listen_address, exposition, not_ready,
                             Settings(config.telemetry_path, web))
    except (OSError, ValueError) as e:
        print("vgdrift serve: cannot listen on %s: %s"
              % (config.listen_address, getattr(e, "strerror", None) or e), file=sys.stderr)
        return EXIT_RUNTIME

    try:
        signals = _SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    except BaseException:
        server.server_close()
        raise
    loop = ScanLoop(stats, scanner_factory, config, after_scan=exposition.warm,
                    on_death=lambda: signals.poke(_SignalPipe.LOOP_DIED))
    loop_ref.append(loop)
    http = threading.Thread(target=_serve_http, args=(server, signals), name="vgdrift-http-accept",
                            daemon=True)
    status = EXIT_OK
    try:
        log.info("listening", extra={"address": config.listen_address,
                                     "tls": web.ssl_context is not None,
                                     "telemetry_path": config.telemetry_path})
        http.start()
        loop.start()
        while True:
            signum = signals.wait()
            if signum == signal.SIGHUP:
                config = _reload(config, reload_config, server, loop)
                continue
            if signum == _SignalPipe.SERVER_DIED:
                status = EXIT_RUNTIME
            elif signum == _SignalPipe.LOOP_DIED:
                log.error("the scan loop died; stopping so that the service manager restarts the exporter")
                status = EXIT_RUNTIME
            else:
                log.info("stopping", extra={"signal": signal.Signals(signum).name})
            break
    finally:
        signals.close()
        if http.is_alive():
            server.shutdown()
        server.server_close()
        loop.stop(STOP_GRACE)
    return status


def _serve_http(server: Any, signals: "_SignalPipe") -> None:
    try:
        server.serve_forever(poll_interval=0.2)
    except Exception:
        log.error("HTTP server failed", exc_info=True)
        signals.poke(_SignalPipe.SERVER_DIED)


def _reload(current: ServeConfig, reload_config: Optional[Callable[[], ServeConfig]],
            server: Any, loop: ScanLoop) -> ServeConfig:
    if reload_config is None:
        log.warning("SIGHUP ignored: no configuration source to reload")
        return current
    try:
        new = reload_config()
        web = load_web_config(new.web_config_file)
    except ConfigError as e:
        log.error("reload failed, keeping the previous configuration", extra={"err": str(e)})
        return current
    if new.listen_address != current.listen_address:
        log.warning("web.listen_address changes need a restart",
                    extra={"address": current.listen_address, "ignored": new.listen_address})
        new = dataclasses.replace(new, listen_address=current.listen_address)
    setup_logging(new.log_level, new.log_format)
    server.settings = Settings(new.telemetry_path, web)
    loop.update(new)
    log.info("configuration reloaded", extra={"file": new.config_file or ""})
    return new


class _SignalPipe:
    """Signals delivered as bytes on a pipe (signal.set_wakeup_fd).

    The main thread just blocks reading the pipe: no work happens inside a
    signal handler, and no Event can deadlock against one.
    """

    SERVER_DIED = 0     # not a signal number: poked by the HTTP thread
    LOOP_DIED = 255     # nor this: poked by the scan thread if it ever dies

    def __init__(self, signums: tuple) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, _ignore) for s in signums}
        self._signums = set(signums) | {self.SERVER_DIED, self.LOOP_DIED}

    def wait(self) -> int:
        while True:
            for byte in os.read(self._r, 1):
                if byte in self._signums:
                    return byte

    def poke(self, value: int) -> None:
        try:
            os.write(self._w, bytes([value]))
        except OSError:
            pass

    def close(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._r)
        os.close(self._w)


def _ignore(signum: int, frame: Any) -> None:
    """The real handling happens in the main loop, woken by the pipe."""
