"""Command line: `vgdrift check` and `vgdrift serve`.

Exit codes are a contract with failover scripts: 0 in sync, 1 drift
(refresh, then go), 2 unsafe, 3 unknown.  argparse's own exit 2 would read
as "unsafe", so its errors are turned into 3 here."""

import argparse
import os
import sys
import time
from typing import List, Optional, Tuple

from . import __version__
from .model import EXIT_UNKNOWN

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class UsageError(Exception):
    pass


def _columns() -> int:
    """shutil.get_terminal_size() less 2, as argparse's default, without
    importing shutil (and with it bz2 and lzma): argparse makes a formatter
    for every add_argument, and that import was ~2 ms of each check."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns   # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return columns - 2


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=_columns())


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


MAX_TIMEOUT = 3600.0   # a larger --timeout is a typo, and overflows the waits


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    if value > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIMEOUT:.0f} seconds: {text!r}")
    return value


def _common(p: argparse.ArgumentParser, defaults: bool) -> None:
    p.add_argument("--cache-dir", action="append", metavar="DIR",
                   help="directory of LVM backup files (repeatable; default backup/backup_dir of "
                        "the LVM configuration, /etc/lvm/backup unless it says otherwise)")
    p.add_argument("--lvm-system-dir", metavar="DIR",
                   help="this node's LVM configuration directory (lvm.conf, lvmlocal.conf, "
                        "devices/), which decides whether its LVM would see, own and activate "
                        "each VG (default $LVM_SYSTEM_DIR, else /etc/lvm)")
    p.add_argument("--devices", action="append", metavar="GLOB",
                   help="candidate devices or image files (repeatable; default every disk "
                        "and partition in /sys/class/block)")
    p.add_argument("--vg", action="append", metavar="NAME", help="check only this VG (repeatable)")
    p.add_argument("--exclude-vg", action="append", metavar="NAME",
                   help="leave this VG out, cached or discovered (repeatable)")
    p.add_argument("--timeout", type=_positive, default=10.0 if defaults else None, metavar="SECONDS",
                   help="a device not answering within this is unreadable (default 10)")


def build_parser(with_serve: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog="vgdrift", description="Is this node's cached LVM metadata still current?")
    parser.add_argument("--version", action="version", version=f"vgdrift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    check = sub.add_parser("check", help="compare cache and disks once; exit 0/1/2/3",
                           description="Compare this node's cached VG metadata with the disks. "
                                       "Exit 0 in sync, 1 drift, 2 unsafe, 3 unknown.")
    _common(check, defaults=True)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--discover", action="store_true",
                       help="also read the label of every candidate device and report the VGs that "
                            "no cache file describes (exit at least 1 when there are any)")
    check.add_argument("--textfile", metavar="PATH",
                       help="also write the metrics in node_exporter textfile format to PATH (atomically)")
    serve = sub.add_parser("serve", help="Prometheus exporter rescanning in the background")
    _common(serve, defaults=False)
    if with_serve:   # keeps prometheus_client off the one-shot path
        from .serve.main import add_serve_arguments
        add_serve_arguments(serve)
    return parser


def internal_error(exc: BaseException) -> Tuple[str, str]:
    """(one-line description, where) of an unexpected exception: its type
    and message, and the package module (and line) it was raised in."""
    where = "vgdrift"
    tb = exc.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if os.path.abspath(path).startswith(_PACKAGE_DIR):
            rel = os.path.relpath(path, _PACKAGE_DIR)
            where = f"{os.path.splitext(rel)[0].replace(os.sep, '.')}, line {tb.tb_lineno}"
        tb = tb.tb_next
    text = " ".join(str(exc).split())   # one line, whatever the message holds
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__, where


def _check(args) -> int:
    from .report import render_internal_error
    started = time.time()
    try:
        return _check_unguarded(args)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as e:
        # Whatever went wrong, the answer is "unknown" (3), never the 1 an
        # uncaught exception would give ("drift": refresh, then go).
        what, where = internal_error(e)
        message = f"internal error: {what} (in {where})"
        if args.format == "json":
            sys.stdout.write(render_internal_error(message, where, started))
            sys.stdout.flush()
        print(f"vgdrift: {message}", file=sys.stderr)
        return EXIT_UNKNOWN


def _check_unguarded(args) -> int:
    from .node.lvmconf import system_dir
    from .report import render_json, render_text
    from .scan import Scanner, ScanOptions
    options = ScanOptions(
        cache_dirs=tuple(args.cache_dir or ()),      # (): backup/backup_dir of the LVM configuration
        device_globs=tuple(args.devices or ()),
        vgs=tuple(args.vg or ()),
        exclude_vgs=tuple(args.exclude_vg or ()),
        discover=args.discover,
        timeout=args.timeout,
        lvm_system_dir=system_dir() if args.lvm_system_dir is None else args.lvm_system_dir)
    result = Scanner(options, isolation="fork").scan()
    # Everything is rendered before anything is written, so that a failure
    # anywhere still leaves one whole document on stdout.
    out = render_json(result) if args.format == "json" else render_text(result)
    code = result.exit_code
    late = []
    if args.textfile:
        from .serve.collector import TextfileError, write_textfile
        try:
            write_textfile(args.textfile, result)
        except TextfileError as failure:
            late.append(f"vgdrift: {failure}")
            code = EXIT_UNKNOWN
    sys.stdout.write(out)
    sys.stdout.flush()
    for line in late:
        print(line, file=sys.stderr)
    for e in result.errors:
        print(f"vgdrift: {e.message}", file=sys.stderr)
    for w in result.warnings:
        print(f"vgdrift: warning: {w.message}", file=sys.stderr)
    return code


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(with_serve="serve" in argv).parse_args(argv)
    except UsageError as e:
        print(f"{e} (see --help)", file=sys.stderr)
        return EXIT_UNKNOWN
    except SystemExit as e:   # --help and --version
        return e.code if isinstance(e.code, int) else 0
    # Names and texts from disks may hold characters the locale cannot
    # encode: escape them rather than fail on output.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        if args.command == "check":
            return _check(args)
        from .serve.main import serve_main
        return serve_main(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_UNKNOWN
    except Exception as e:   # serve's start-up; its scan loop catches its own
        what, where = internal_error(e)
        print(f"vgdrift: internal error: {what} (in {where})", file=sys.stderr)
        return EXIT_UNKNOWN


def main_entry() -> None:
    sys.exit(main())
