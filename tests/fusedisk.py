"""A pass-through FUSE filesystem whose reads can be slowed down or held.

Run as its own process (the kernel calls back into it, so it must not share
a GIL-holding, possibly stuck process with the test):

    python tests/fusedisk.py BACKING_DIR MOUNTPOINT [--delay-ms N]

Files in BACKING_DIR appear under MOUNTPOINT; a loop device attached to such
a file behaves like a disk whose reads take N ms each, or never return while
the file is "blocked".

Control works while reads are blocked: the controller atomically replaces
BACKING_DIR/.fusedisk.ctl (JSON ``{"gen": n, "delay_ms": ms, "blocked":
[names], "blocked_writes": [names]}``); a watcher thread in the server picks
it up within ~10 ms, wakes held reads, and acknowledges by writing ``{"gen":
n}`` to BACKING_DIR/.fusedisk.ack. Both files are hidden from the mount.
If the server dies, the kernel aborts the connection and every pending
request fails with ENOTCONN, so nothing stays stuck forever.

The filesystem is mounted with ``direct_io``: the kernel keeps no page cache
for these files, so every read a loop device issues reaches this process
(otherwise a cached block would be served without ever being held).

Teardown order (``FuseDisk.close`` and ``Lab.close``):
  1. unblock everything: a process reading a held block (dd, LVM, vgdrift's
     worker, the loop driver's kworker) is in uninterruptible sleep (D
     state); it cannot be killed, and a loop device with I/O in flight
     cannot be detached, and the mount cannot be unmounted;
  2. detach the loop devices over the mount (the Lab's job);
  3. unmount (``fusermount -u``, falling back to ``umount -l``);
  4. stop the server process.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CTL_NAME = ".fusedisk.ctl"
ACK_NAME = ".fusedisk.ack"


def _hidden(name: str) -> bool:
    return name.startswith(".fusedisk.")


# ----------------------------------------------------------------- server

def _serve(backing: str, mountpoint: str, delay_ms: int) -> None:
    # Imported here so that `import fusedisk` (for the client class) works
    # where fusepy or libfuse2 is missing; only the server needs them.
    from fuse import FUSE, FuseOSError, Operations

    backing = os.path.realpath(backing)

    class State:
        def __init__(self) -> None:
            self.cond = threading.Condition()
            self.gen = -1
            self.delay_ms = delay_ms
            self.blocked: set = set()
            self.blocked_writes: set = set()
            self.stopping = False

        def apply(self, ctl: dict) -> None:
            with self.cond:
                self.gen = int(ctl.get("gen", 0))
                self.delay_ms = int(ctl.get("delay_ms", self.delay_ms))
                self.blocked = set(ctl.get("blocked", ()))
                self.blocked_writes = set(ctl.get("blocked_writes", ()))
                self.cond.notify_all()

        def release_all(self) -> None:
            with self.cond:
                self.stopping = True
                self.blocked = set()
                self.blocked_writes = set()
                self.cond.notify_all()

        def wait_read(self, name: str) -> None:
            with self.cond:
                while name in self.blocked and not self.stopping:
                    self.cond.wait(0.5)
                ms = self.delay_ms
            if ms > 0:
                time.sleep(ms / 1000.0)

        def wait_write(self, name: str) -> None:
            with self.cond:
                while name in self.blocked_writes and not self.stopping:
                    self.cond.wait(0.5)

    state = State()
    ctl_path = os.path.join(backing, CTL_NAME)
    ack_path = os.path.join(backing, ACK_NAME)

    def write_ack(gen: int) -> None:
        tmp = ack_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"gen": gen, "pid": os.getpid()}, f)
        os.replace(tmp, ack_path)

    def watcher() -> None:
        last = None
        while not state.stopping:
            try:
                st = os.stat(ctl_path)
                key = (st.st_mtime_ns, st.st_size, st.st_ino)
                if key != last:
                    with open(ctl_path) as f:
                        ctl = json.load(f)
                    state.apply(ctl)
                    last = key
                    write_ack(state.gen)
            except FileNotFoundError:
                pass
            except (ValueError, OSError):
                last = None  # half-written or vanished: retry next tick
            time.sleep(0.01)

    def rel(path: str) -> str:
        return path.lstrip("/")

    def real(path: str) -> str:
        r = rel(path)
        if _hidden(r.split("/", 1)[0]):
            raise FuseOSError(errno.ENOENT)
        return os.path.join(backing, r)

    def oserr(fn):
        def wrapped(*a, **kw):
            try:
                return fn(*a, **kw)
            except OSError as e:
                if isinstance(e, FuseOSError):
                    raise
                raise FuseOSError(e.errno or errno.EIO) from e
        wrapped.__name__ = fn.__name__
        return wrapped

    class PassThrough(Operations):
        @oserr
        def getattr(self, path, fh=None):
            st = os.lstat(real(path))
            return {k: getattr(st, k) for k in (
                "st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                "st_atime", "st_mtime", "st_ctime", "st_blocks")}

        @oserr
        def readdir(self, path, fh):
            names = [n for n in os.listdir(real(path)) if not _hidden(n)]
            return [".", ".."] + names

        @oserr
        def access(self, path, mode):
            if not os.access(real(path), mode):
                raise FuseOSError(errno.EACCES)

        @oserr
        def statfs(self, path):
            s = os.statvfs(real(path))
            return {k: getattr(s, k) for k in (
                "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

        @oserr
        def open(self, path, flags):
            # O_DIRECT from the loop driver (--direct-io) must not reach
            # the backing file system, which may refuse it.
            return os.open(real(path), flags & ~getattr(os, "O_DIRECT", 0))

        @oserr
        def create(self, path, mode, fi=None):
            return os.open(real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

        @oserr
        def read(self, path, size, offset, fh):
            state.wait_read(rel(path))
            return os.pread(fh, size, offset)

        @oserr
        def write(self, path, data, offset, fh):
            state.wait_write(rel(path))
            return os.pwrite(fh, data, offset)

        @oserr
        def truncate(self, path, length, fh=None):
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(real(path), length)

        @oserr
        def fsync(self, path, datasync, fh):
            if datasync:
                os.fdatasync(fh)
            else:
                os.fsync(fh)

        def flush(self, path, fh):
            return 0

        @oserr
        def release(self, path, fh):
            os.close(fh)

        @oserr
        def unlink(self, path):
            os.unlink(real(path))

        @oserr
        def mkdir(self, path, mode):
            os.mkdir(real(path), mode)

        @oserr
        def rmdir(self, path):
            os.rmdir(real(path))

        @oserr
        def rename(self, old, new):
            os.rename(real(old), real(new))

        @oserr
        def chmod(self, path, mode):
            os.chmod(real(path), mode)

        @oserr
        def chown(self, path, uid, gid):
            os.chown(real(path), uid, gid)

        @oserr
        def utimens(self, path, times=None):
            os.utime(real(path), times)

        def destroy(self, path):
            state.release_all()

    # Apply an existing control file before serving the first request.
    try:
        with open(ctl_path) as f:
            state.apply(json.load(f))
    except (OSError, ValueError):
        pass
    threading.Thread(target=watcher, name="fusedisk-ctl", daemon=True).start()

    def on_term(signum, frame):
        # Let held reads go before libfuse tears the session down.
        state.release_all()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        FUSE(PassThrough(), mountpoint, foreground=True, nothreads=False,
             allow_other=True, direct_io=True, big_writes=True,
             default_permissions=False, fsname="fusedisk", subtype="fusedisk")
    finally:
        state.release_all()


# ----------------------------------------------------------------- client

def _mounted(mountpoint: str) -> bool:
    # /proc/self/mountinfo never calls into the FUSE server (os.path.ismount
    # would stat the root, fine too, but this also works once it is wedged).
    want = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            if mp == want and "fuse" in line.split(" - ", 1)[1].split()[0]:
                return True
    return False


class FuseDiskError(RuntimeError):
    pass


class FuseDisk:
    """Run fusedisk.py on ``backing_dir`` mounted at ``mountpoint``.

    ``path(name)`` is the mounted view of ``backing_dir/name``. ``block``
    and ``unblock`` return once the server has applied the change.
    """

    def __init__(self, backing_dir, mountpoint, delay_ms: int = 0,
                 start_timeout: float = 10.0):
        self.backing_dir = os.path.realpath(str(backing_dir))
        self.mountpoint = os.path.realpath(str(mountpoint))
        os.makedirs(self.backing_dir, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        self._gen = 0
        self._delay_ms = int(delay_ms)
        self._blocked: set = set()
        self._blocked_writes: set = set()
        self._closed = False
        self._write_ctl()
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), self.backing_dir,
             self.mountpoint, "--delay-ms", str(self._delay_ms)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + start_timeout
        while not _mounted(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self._output()
                self.close()
                raise FuseDiskError(
                    f"fusedisk did not mount {self.mountpoint}: {out.strip()}")
            time.sleep(0.02)
        self._wait_ack(start_timeout)

    # -- control
    def _write_ctl(self) -> None:
        self._gen += 1
        ctl = {"gen": self._gen, "delay_ms": self._delay_ms,
               "blocked": sorted(self._blocked),
               "blocked_writes": sorted(self._blocked_writes)}
        path = os.path.join(self.backing_dir, CTL_NAME)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ctl, f)
        os.replace(tmp, path)

    def _wait_ack(self, timeout: float = 5.0) -> None:
        path = os.path.join(self.backing_dir, ACK_NAME)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    if json.load(f).get("gen", -1) >= self._gen:
                        return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise FuseDiskError(f"fusedisk server exited: {self._output().strip()}")
            if time.monotonic() > deadline:
                raise FuseDiskError("fusedisk server did not acknowledge control change")
            time.sleep(0.005)

    def _update(self, wait: bool = True) -> None:
        self._write_ctl()
        if wait and self.proc.poll() is None:
            self._wait_ack()

    def _output(self) -> str:
        try:
            self._log.seek(0)
            return self._log.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def path(self, name: str) -> str:
        return os.path.join(self.mountpoint, name)

    def block(self, name: str, writes: bool = False) -> None:
        """Hold every read (and write, if asked) of ``name`` until unblocked."""
        self._blocked.add(name)
        if writes:
            self._blocked_writes.add(name)
        self._update()

    def unblock(self, name: str) -> None:
        self._blocked.discard(name)
        self._blocked_writes.discard(name)
        self._update()

    def unblock_all(self) -> None:
        self._blocked.clear()
        self._blocked_writes.clear()
        self._update(wait=not self._closed)

    def set_delay(self, delay_ms: int) -> None:
        self._delay_ms = int(delay_ms)
        self._update()

    @property
    def blocked(self) -> frozenset:
        return frozenset(self._blocked)

    # -- teardown
    def close(self, timeout: float = 10.0) -> None:
        """Unblock, unmount, stop the server. Idempotent.

        Loop devices over files in the mount must be detached before this
        (Lab.close does it between unblock_all() and close()); if some are
        still attached the mount is detached lazily and the server is then
        stopped, which fails their pending I/O instead of hanging it.
        """
        if self._closed:
            return
        try:
            self._blocked.clear()
            self._blocked_writes.clear()
            try:
                self._update(wait=True)
            except FuseDiskError:
                pass
        finally:
            self._closed = True
        if _mounted(self.mountpoint):
            tool = shutil.which("fusermount") or shutil.which("fusermount3")
            ok = tool and subprocess.run([tool, "-u", self.mountpoint],
                                         capture_output=True).returncode == 0
            if not ok and _mounted(self.mountpoint):
                subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
        proc = self.proc if hasattr(self, "proc") else None
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if _mounted(self.mountpoint):
            subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
        for n in (CTL_NAME, ACK_NAME, CTL_NAME + ".tmp", ACK_NAME + ".tmp"):
            try:
                os.unlink(os.path.join(self.backing_dir, n))
            except OSError:
                pass
        try:
            self._log.close()
        except Exception:
            pass

    def __enter__(self) -> FuseDisk:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("backing_dir")
    p.add_argument("mountpoint")
    p.add_argument("--delay-ms", type=int, default=0)
    a = p.parse_args(argv)
    _serve(a.backing_dir, a.mountpoint, a.delay_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
