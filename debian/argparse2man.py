#!/usr/bin/python3
"""Writes the vgdrift(1) man page (roff) from the CLI's argparse parser,
vgdrift.cli.build_parser(), so that the page follows the flags without
being edited by hand.  Run at package build time by debian/rules:

    PYTHONPATH=exporter python3 debian/argparse2man.py debian/vgdrift.1

(Debian's python3-argparse-manpage would do the walk too, but its 1.2 writes
a NAME line lintian rejects; this is short enough to own.)  Only the
standard library and the vgdrift package are imported; the serve flags
import prometheus_client, PyYAML and bcrypt, hence their Build-Depends.
The date is SOURCE_DATE_EPOCH's (set by dpkg from debian/changelog), so
the page is reproducible."""

import argparse
import datetime
import os
import sys
from typing import List, Optional


def roff(text: str) -> str:
    """Text for a roff line: backslashes escaped, hyphens as \\- (what a
    reader types: flags, paths), no line that starts as a request."""
    text = " ".join(text.split())
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper()


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """argparse's own expansion (%(default)s...), plus the choices and the
    default when the help text does not give them."""
    text = ""
    if action.help:
        # Private, but it is exactly what `--help` prints, and has been
        # there since Python 2.7.
        text = parser._get_formatter()._expand_help(action)
    extra = []
    if action.choices is not None and action.metavar is None and not text:
        extra.append("One of " + ", ".join(str(c) for c in action.choices) + ".")
    default = action.default
    if (_takes_value(action) and default is not None and default is not argparse.SUPPRESS
            and "default" not in text and not isinstance(default, list)):
        extra.append(f"Default {default}.")
    if text and not text.endswith("."):
        text += "."
    if text:
        text = text[0].upper() + text[1:]
    return " ".join([text] + extra).strip()


def _flags(action: argparse.Action) -> str:
    """\\fB\\-\\-flag\\fR \\fIMETAVAR\\fR, every spelling."""
    names = [f"\\fB{roff(o)}\\fR" for o in action.option_strings]
    if _takes_value(action):
        names = [f"{n} \\fI{roff(_metavar(action))}\\fR" for n in names]
    return ", ".join(names)


def _synopsis(name: str, parser: argparse.ArgumentParser) -> List[str]:
    lines = [f".B {roff(name)}"]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        opt = f"\\fB{roff(action.option_strings[-1])}\\fR"
        if _takes_value(action):
            opt += f" \\fI{roff(_metavar(action))}\\fR"
        repeat = "..." if isinstance(action, argparse._AppendAction) else ""
        lines.append(f"[{opt}]{repeat}")
    return lines


def _options(parser: argparse.ArgumentParser) -> List[str]:
    out = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        out += [".TP", _flags(action), roff(_help(parser, action))]
    return out


def _subparsers(parser: argparse.ArgumentParser) -> List[tuple]:
    """[(name, parser, one-line help)] in definition order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, p, helps.get(name, "")) for name, p in action.choices.items()]
    return []


def _exit_status() -> List[str]:
    """Exit codes with the VG states that give them (vgdrift.model)."""
    try:
        from vgdrift import model
        states = model.STATE_EXIT
        codes = model.Exit
    except (ImportError, AttributeError):
        return []
    out = [".SH \"EXIT STATUS\"",
           "The exit status of \\fBcheck\\fR is the worst over all checked volume groups:"]
    for code in sorted(codes):
        named = sorted(str(getattr(s, "value", s)) for s, c in states.items() if c == code)
        what = ", ".join(named)
        if code == codes.UNKNOWN:
            what += " (and bad flags, an unparseable cache file, no permission: the answer is unknown)"
        out += [".TP", f"\\fB{int(code)}\\fR", roff(what)]
    return out


def manpage(parser: argparse.ArgumentParser, version: str, date: str) -> str:
    prog = parser.prog
    summary = (parser.description or "").strip()
    whatis = summary[0].lower() + summary[1:] if summary else prog
    subs = _subparsers(parser)
    out = [f'.TH {prog.upper()} 1 "{date}" "{prog} {version}" "User Commands"',
           ".SH NAME",
           f"{prog} \\- {roff(whatis)}",
           ".SH SYNOPSIS"]
    for i, (name, sub, _) in enumerate(subs):
        if i:
            out.append(".br")
        out += _synopsis(f"{prog} {name}", sub)
    out += [".br", f".B {prog} \\-\\-version", ".SH DESCRIPTION", roff(summary)]
    if subs:
        out.append(".SH COMMANDS")
        for name, sub, short in subs:
            out += [".SS " + roff(name), roff(sub.description or short)]
            out += _options(sub)
    out += [".SH OPTIONS"] + _options(parser)
    out += _exit_status()
    out += [".SH FILES",
            ".TP", "\\fI/etc/vgdrift/config.yml\\fR",
            roff("Configuration of vgdrift serve (--config.file), as the vgdrift.service unit uses it."),
            ".TP", "\\fI/usr/share/vgdrift/\\fR",
            roff("Prometheus alert rules and their tests, the runbook, the Grafana dashboard."),
            ".TP", "\\fI/usr/lib/ocf/resource.d/vgdrift/\\fR",
            roff("Pacemaker resource agents guard and health."),
            ".SH \"SEE ALSO\"",
            "\\fBlvm\\fR(8), \\fBvgcfgbackup\\fR(8), \\fBlvm.conf\\fR(5), \\fBpromtool\\fR(1)"]
    return "\n".join(out) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from vgdrift import __version__
    from vgdrift.cli import build_parser
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    when = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch else \
        datetime.datetime.now(datetime.timezone.utc)
    text = manpage(build_parser(with_serve=True), __version__, when.strftime("%Y-%m-%d"))
    if argv:
        with open(argv[0], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
