"""Device reads in a child process that the parent can abandon.

A thread blocked in an uninterruptible read (a dead path, D state) keeps a
Python process from exiting even after its main thread returned, and no
signal frees it.  So every device read happens in a child: it streams its
observations back over a pipe, and the parent collects until the child says
it is done or the deadline passes; then it walks away.  An abandoned child
finishes or dies on its own once the kernel lets its read go.

`check` forks (its process has one thread, forking is cheap); the exporter
spawns `python -m vgdrift.disk.worker --loop` instead, because forking a
process that runs an HTTP server's threads can copy a lock some other thread
held.  That worker is long-lived (`Persistent`): it reads one plan per scan
from its stdin and answers on its stdout, so a scan does not pay for a new
interpreter.  It is replaced as soon as a scan leaves a read behind (a
device that timed out, or the parent's deadline): the old one is let go
exactly like a one-shot worker, its pipes closed, and exits once the kernel
returns its read; until then the Scanner counts its devices as outstanding.
"""

import os
import pickle
import select
import struct
import sys
import time
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Tuple

from . import diskscan, pvread

if TYPE_CHECKING:     # imported where a worker is spawned: `check` forks and never needs it
    import subprocess

_FRAME = struct.Struct("<I")
# The directory that holds the vgdrift package (this file is
# vgdrift/disk/worker.py): a spawned worker must import this very copy.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_FRAME = 256 << 20


class Outcome:
    """What the parent learnt from one worker."""

    def __init__(self, pid: int = 0, heads: Optional[Dict[tuple, pvread.HeadObs]] = None,
                 texts: Optional[Dict[tuple, pvread.TextObs]] = None,
                 text_failures: Optional[Dict[tuple, pvread.TextObs]] = None,
                 discovered: Optional[Dict[tuple, pvread.HeadObs]] = None,
                 candidates: Optional[Tuple[str, ...]] = None, stats: Optional[dict] = None,
                 error: Optional[str] = None) -> None:
        # (A plain class: a mutable dataclass would import dataclasses,
        # ~10 ms of a one-shot check's start-up.)
        self.heads = {} if heads is None else heads
        self.texts = {} if texts is None else texts
        self.text_failures = {} if text_failures is None else text_failures
        # Heads of devices only discovery read (Plan.discover): kept out of
        # the cached VGs' views.
        self.discovered = {} if discovered is None else discovered
        self.candidates = candidates   # paths the candidate scan looked at, if it ran
        self.stats = stats             # set when the worker finished its plan
        self.error = error             # the worker itself failed
        self.pid = pid

    @property
    def complete(self) -> bool:
        return self.stats is not None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def child_main(plan: diskscan.Plan, fd: int) -> None:
    # Frames are written in one go before each batch of reads (diskscan
    # calls emit.flush) and at the end, not one write per observation: the
    # parent keeps everything known before any read that may hang, and
    # wakes once per batch instead of once per device.
    # One frame per flush, a list of (kind, observation): one pickle of a
    # batch costs far less than one per observation, here and in the parent.
    pending: List[tuple] = []

    def flush() -> None:
        if pending:
            data = pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL)
            pending.clear()
            _write_all(fd, _FRAME.pack(len(data)) + data)

    def emit(kind, obj):
        pending.append((kind, obj))
        if kind in ("done", "error"):
            flush()
    emit.flush = flush      # type: ignore[attr-defined]
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
            batch = pickle.loads(bytes(buf[_FRAME.size:_FRAME.size + size]))
            del buf[:_FRAME.size + size]
            for kind, obj in batch:
                _apply(out, kind, obj)
    return out


class Running(NamedTuple):
    """A started worker: read its frames from `fd`."""
    pid: int
    fd: int
    proc: "Optional[subprocess.Popen]" = None   # spawned workers only
    pool: Optional["Persistent"] = None       # a long-lived worker: kept after a clean scan


def start(plan: diskscan.Plan, isolation: str, pool: Optional["Persistent"] = None) -> Running:
    if isolation == "fork":
        return _fork(plan)
    return pool.start(plan) if pool is not None else _spawn(plan)


class Persistent:
    """The exporter's long-lived worker (`python -m vgdrift.disk.worker
    --loop`): one plan per scan, framed like the answers.  A worker that
    ended a scan cleanly (done, nothing left hanging) serves the next
    scan; any other is retired (retire()) and a new one spawned."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.spawned = 0          # how many workers this pool started (tests, bench)

    def start(self, plan: diskscan.Plan) -> Running:
        data = pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
        for _ in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self.proc = _popen(["--loop"])
                self.spawned += 1
            proc = self.proc
            assert proc.stdin is not None and proc.stdout is not None   # both are pipes
            try:
                proc.stdin.write(_FRAME.pack(len(data)) + data)
                proc.stdin.flush()
            except OSError:
                self._let_go(proc)      # it died between scans: a new one
                continue
            return Running(proc.pid, proc.stdout.fileno(), proc, self)
        # Two workers in a row died at once: the scan sees it as a worker
        # that exited without finishing (a pipe with nobody writing).
        r, w = os.pipe()
        os.close(w)
        return Running(proc.pid, r)

    def retire(self, running: Running) -> None:
        if running.proc is not None and running.proc is self.proc:
            self._let_go(running.proc)

    def _let_go(self, proc: "subprocess.Popen") -> None:
        """Closes our ends of its pipes: at its next read of a plan it sees
        the end (or, writing, EPIPE) and exits; a read still blocked in the
        kernel keeps it alive until the kernel lets go."""
        if proc is self.proc:
            self.proc = None
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass

    def close(self) -> None:
        if self.proc is not None:
            self._let_go(self.proc)


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


def _popen(args) -> "subprocess.Popen":
    import subprocess
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.Popen([sys.executable, "-m", "vgdrift.disk.worker", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                            env=env, start_new_session=True)


def _spawn(plan: diskscan.Plan) -> Running:
    proc = _popen([])
    assert proc.stdin is not None and proc.stdout is not None   # both are pipes
    try:
        proc.stdin.write(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
        proc.stdin.close()
    except OSError:
        pass  # the worker died at once; collect() reports it
    return Running(proc.pid, proc.stdout.fileno(), proc)


def finish(running: Running, deadline: float) -> Outcome:
    """Collects until done or the deadline, then lets go of the worker."""
    out = Outcome(pid=running.pid)
    try:
        out = collect(running.fd, deadline, out)
    finally:
        if running.pool is not None:
            if not out.complete:
                running.pool.retire(running)
        elif running.proc is not None and running.proc.stdout is not None:
            running.proc.stdout.close()
        else:
            os.close(running.fd)
    if running.pool is not None:
        return out
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


def abandon(running: Running) -> None:
    """Lets a started worker go without hearing it out (its plan was not
    the one needed): with our end of its pipe closed it fails at its next
    write and exits."""
    retire(running)
    if running.proc is not None and running.proc.stdout is not None:
        if running.pool is None:
            running.proc.stdout.close()
    else:
        os.close(running.fd)


def retire(running: Running) -> None:
    """A long-lived worker left a read behind: it serves no more scans."""
    if running.pool is not None:
        running.pool.retire(running)


def _read_exactly(stream, n: int) -> Optional[bytes]:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def main() -> None:
    fd = os.dup(sys.stdout.fileno())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    try:
        if "--loop" not in sys.argv[1:]:
            child_main(pickle.load(sys.stdin.buffer), fd)
            return
        # One plan per frame until the parent closes our stdin.  A write
        # to a parent that let us go fails (EPIPE): then we exit too.
        pvread.keep_parsed()
        while True:
            head = _read_exactly(sys.stdin.buffer, _FRAME.size)
            if head is None:
                return
            data = _read_exactly(sys.stdin.buffer, _FRAME.unpack(head)[0])
            if data is None:
                return
            child_main(pickle.loads(data), fd)
    except BaseException:   # noqa: BLE001 - a worker has nobody to tell
        pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
