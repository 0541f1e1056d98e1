"""Device reads in a child process that the parent can abandon.

A thread blocked in an uninterruptible read (a dead path, D state) keeps a
Python process from exiting even after its main thread returned, and no
signal frees it.  So every device read happens in a child: it streams its
observations back over a pipe, and the parent collects until the child says
it is done or the deadline passes; then it walks away.  An abandoned child
finishes or dies on its own once the kernel lets its read go.

`check` forks (its process has one thread, forking is cheap); the exporter
spawns `python -m vgdrift.disk.worker` instead, because forking a process that
runs an HTTP server's threads can copy a lock some other thread held.
"""

import os
import pickle
import select
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from . import diskscan, pvread

_FRAME = struct.Struct("<I")
# The directory that holds the vgdrift package (this file is
# vgdrift/disk/worker.py): a spawned worker must import this very copy.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_FRAME = 256 << 20


@dataclass
class Outcome:
    """What the parent learnt from one worker."""
    heads: Dict[tuple, pvread.HeadObs] = field(default_factory=dict)
    texts: Dict[tuple, pvread.TextObs] = field(default_factory=dict)
    text_failures: Dict[tuple, pvread.TextObs] = field(default_factory=dict)
    # Heads of devices only discovery read (Plan.discover): kept out of
    # the cached VGs' views.
    discovered: Dict[tuple, pvread.HeadObs] = field(default_factory=dict)
    candidates: Optional[Tuple[str, ...]] = None   # paths the candidate scan looked at, if it ran
    stats: Optional[dict] = None     # set when the worker finished its plan
    error: Optional[str] = None      # the worker itself failed
    pid: int = 0

    @property
    def complete(self) -> bool:
        return self.stats is not None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def child_main(plan: diskscan.Plan, fd: int) -> None:
    def emit(kind, obj):
        data = pickle.dumps((kind, obj), protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(fd, _FRAME.pack(len(data)) + data)
    try:
        stats = diskscan.run(plan, emit)
        emit("done", stats)
    except BaseException as e:  # the parent turns this into a one-line error
        emit("error", f"{type(e).__name__}: {e}")


def _apply(out: Outcome, kind: str, obj) -> None:
    if kind == "head":
        out.heads[obj.ident] = obj
    elif kind == "discovered":
        out.discovered[obj.ident] = obj
    elif kind == "text":
        out.texts[obj.key] = obj
    elif kind == "text_failure":
        out.text_failures[obj[0]] = obj[1]
    elif kind == "candidates":
        out.candidates = obj
    elif kind == "done":
        out.stats = obj
    elif kind == "error":
        out.error = obj


def collect(fd: int, deadline: float, out: Outcome) -> Outcome:
    """Reads frames until the worker is done, its pipe closes, or the
    (monotonic) deadline passes."""
    buf = bytearray()
    while out.stats is None and out.error is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            if out.stats is None and out.error is None:
                out.error = "worker exited without finishing"
            break
        buf += chunk
        while len(buf) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(buf)
            if size > MAX_FRAME:
                out.error = "worker sent a malformed frame"
                return out
            if len(buf) < _FRAME.size + size:
                break
            kind, obj = pickle.loads(bytes(buf[_FRAME.size:_FRAME.size + size]))
            del buf[:_FRAME.size + size]
            _apply(out, kind, obj)
    return out


@dataclass
class Running:
    """A started worker: read its frames from `fd`."""
    pid: int
    fd: int
    proc: Optional[subprocess.Popen] = None   # spawned workers only


def start(plan: diskscan.Plan, isolation: str) -> Running:
    return _fork(plan) if isolation == "fork" else _spawn(plan)


def _fork(plan: diskscan.Plan) -> Running:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            # A child stuck in a read must not hold the caller's stdout open:
            # `out=$(vgdrift check)` would wait for it.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            child_main(plan, w)
        finally:
            os._exit(0)
    os.close(w)
    return Running(pid, r)


def _spawn(plan: diskscan.Plan) -> Running:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen([sys.executable, "-m", "vgdrift.disk.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                            env=env, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None   # both are pipes
    try:
        proc.stdin.write(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
        proc.stdin.close()
    except OSError:
        pass  # the worker died at once; collect() reports it
    return Running(proc.pid, proc.stdout.fileno(), proc)


def finish(running: Running, deadline: float) -> Outcome:
    """Collects until done or the deadline, then lets go of the worker."""
    try:
        out = collect(running.fd, deadline, Outcome(pid=running.pid))
    finally:
        if running.proc is not None and running.proc.stdout is not None:
            running.proc.stdout.close()
        else:
            os.close(running.fd)
    # A worker that finished exits right after its last frame; give it a
    # moment so a one-shot check leaves no orphan.  A hung one stays behind.
    for _ in range(50):
        if not out.complete or exited(running):
            break
        time.sleep(0.001)
    return out


def exited(running: Running) -> bool:
    """True once the worker has exited (and is reaped)."""
    if running.proc is not None:
        return running.proc.poll() is not None
    try:
        done, _ = os.waitpid(running.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == running.pid


def main() -> None:
    plan = pickle.load(sys.stdin.buffer)
    fd = os.dup(sys.stdout.fileno())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    try:
        child_main(plan, fd)
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
