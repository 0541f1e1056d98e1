"""Two-node LVM lab over loop devices, for tests and fixture generation.

Each disk is a sparse image file attached twice with ``losetup -f --show``:
``disk.a`` for node A and ``disk.b`` for node B, like two hosts on one LUN.
Each node has its own ``LVM_SYSTEM_DIR`` whose lvm.conf accepts only that
node's loops, and its own backup (the cache under test), archive and lock
dirs. There is no device-mapper, so every LVM command runs with
``--driverloaded n`` and ``lvcreate`` with ``-an -Zn -Wn``.

Ground truth comes from node A (``lab.a.vgs_truth(vg)``). LVM reporting
commands rewrite the node's backup when it differs from disk, so they are
refused on node B unless asked for explicitly; ``lab.b.vgcfgbackup(vg)`` is
the refresh action.

``lab.close()`` (run by the pytest fixture even when a test fails) unblocks
any FUSE disk first, then detaches exactly the loops this lab attached,
unmounts FUSE and removes the images.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

MIB = 1024 * 1024

# LVM prints these on every command here; they say nothing about the outcome.
_NOISE = (
    "WARNING: Activation disabled",
    "leaked on lvm invocation",
)

# Every LVM command accepts --driverloaded; without it, commands that change
# LVs try to suspend/resume them through device-mapper and fail (lvcreate:
# exit 3 "striped: Required device-mapper target(s) not detected";
# lvextend/lvresize/lvreduce/lvrename: exit 5 "Failed to suspend", metadata
# reverted), and VG commands print device-mapper errors. So: everywhere.
_NO_DRIVERLOADED = {"version", "help", "formats", "segtypes", "types",
                    "tags", "devtypes"}

# Commands that read and report VG state: they rewrite the running node's
# backup when it differs from disk, erasing the drift under test.
REPORTING = {"vgs", "lvs", "pvs", "vgscan", "lvscan", "pvscan", "vgdisplay",
             "lvdisplay", "pvdisplay", "fullreport", "lvmdiskscan", "vgck"}


class LabError(RuntimeError):
    """An external command of the lab failed; the message carries stderr."""


def _clean_stderr(text: str) -> str:
    return "\n".join(l for l in text.splitlines()
                     if l.strip() and not any(n in l for n in _NOISE))


def _run(cmd, *, env=None, check=True, input=None, timeout=120):
    r = subprocess.run([str(c) for c in cmd], env=env, input=input,
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n"
                       f"{_clean_stderr(r.stderr) or r.stdout}")
    return r


def device_filter(devices) -> str:
    """An LVM filter accepting exactly `devices`."""
    return "[ " + ", ".join([f'"a|^{d}$|"' for d in devices] + ['"r|.*|"']) + " ]"


def lvm_conf(devices, backup_dir, archive_dir, locking_dir, written_by: str, archive: bool = True,
             autoactivation: bool = False) -> str:
    """A node's lvm.conf: only `devices`, no hints, no devices file, no udev,
    its own backup, archive and locking dirs, nothing that needs
    device-mapper or daemons.  Like an HA node, it autoactivates nothing
    (auto_activation_volume_list = [ ]) unless `autoactivation`."""
    flt = device_filter(devices)
    auto = "" if autoactivation else "    auto_activation_volume_list = [ ]\n"
    return f"""\
# Written by {written_by}.
devices {{
    filter = {flt}
    global_filter = {flt}
    hints = "none"
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
}}
backup {{
    backup = 1
    backup_dir = "{backup_dir}"
    archive = {1 if archive else 0}
    archive_dir = "{archive_dir}"
}}
global {{
    locking_dir = "{locking_dir}"
    use_lvmpolld = 0
    event_activation = 0
}}
activation {{
    monitoring = 0
    udev_sync = 0
    udev_rules = 0
{auto}}}
"""


@dataclass
class Disk:
    """One shared image and the loop device each node sees it through."""
    name: str
    image: Path
    size_mib: int
    sector_size: int = 512
    a: Optional[str] = None
    b: Optional[str] = None
    fuse_name: Optional[str] = None     # name in the FUSE mount, fuse disks only
    fuse_nodes: tuple = ()              # nodes whose loop goes through FUSE

    def on(self, node) -> Optional[str]:
        """The loop path of this disk on ``node`` (a Node or "a"/"b")."""
        return getattr(self, getattr(node, "name", node))


class Node:
    def __init__(self, lab: Lab, name: str):
        self.lab = lab
        self.name = name
        self.dir = lab.workdir / f"node-{name}"
        self.system_dir = self.dir / "etc"
        self.backup_dir = self.dir / "backup"
        self.archive_dir = self.dir / "archive"
        self.locking_dir = self.dir / "lock"
        self.autoactivation = False       # see allow_autoactivation()
        for d in (self.system_dir, self.backup_dir, self.archive_dir, self.locking_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update({
            "LVM_SYSTEM_DIR": str(self.system_dir),
            "LVM_SUPPRESS_FD_WARNINGS": "1",
            "DM_DISABLE_UDEV": "1",
            "LC_ALL": "C",
        })
        self.write_conf()

    def __repr__(self) -> str:
        return f"<Node {self.name} devices={self.devices}>"

    @property
    def devices(self) -> List[str]:
        """This node's loop devices, in the order the disks were added."""
        return [d.on(self) for d in self.lab.disks if d.on(self)]

    def write_conf(self) -> None:
        conf = lvm_conf(self.devices, self.backup_dir, self.archive_dir, self.locking_dir,
                        f"tests/lab.py for node {self.name}: only this node's loops",
                        autoactivation=self.autoactivation)
        tmp = self.system_dir / "lvm.conf.tmp"
        tmp.write_text(conf)
        os.replace(tmp, self.system_dir / "lvm.conf")

    # -- LVM
    def lvm(self, *args, check: bool = True, allow_report: bool = False,
            input: Optional[str] = None, timeout: float = 120):
        """Run ``lvm ARGS`` as this node. Returns the CompletedProcess.

        Raises LabError (with LVM's stderr, minus known noise) on failure
        when ``check``. Reporting commands are refused on node B unless
        ``allow_report``: they would silently refresh its cache.
        """
        if not args:
            raise ValueError("lvm() needs a command")
        args = [str(a) for a in args]
        sub, rest = args[0], args[1:]
        if sub in REPORTING and self.name != "a" and not allow_report:
            raise LabError(f"refusing '{sub}' on node {self.name}: reporting "
                           f"commands rewrite its backup (pass allow_report=True)")
        cmd = ["lvm", sub]
        if sub not in _NO_DRIVERLOADED and "--driverloaded" not in rest:
            cmd += ["--driverloaded", "n"]
        if sub == "lvcreate":
            flags = set(rest)
            if not flags & {"-a", "-an", "--activate"} and not any(
                    f.startswith("--activate=") for f in flags):
                cmd.append("-an")
            if not flags & {"-Z", "-Zn", "-Zy", "--zero"}:
                cmd.append("-Zn")
            if not flags & {"-W", "-Wn", "-Wy", "--wipesignatures"}:
                cmd.append("-Wn")
        cmd += rest
        r = _run(cmd, env=self.env, check=check, input=input, timeout=timeout)
        r.stderr_clean = _clean_stderr(r.stderr)
        return r

    def vgcfgbackup(self, vg: Optional[str] = None) -> Path:
        """Refresh this node's cache of ``vg`` from disk (the action under test)."""
        self.lvm("vgcfgbackup", *([vg] if vg else []))
        return self.backup_path(vg) if vg else self.backup_dir

    def backup_path(self, vg: str) -> Path:
        return self.backup_dir / vg

    def read_backup(self, vg: str) -> str:
        return self.backup_path(vg).read_text()

    def archives(self, vg: str) -> List[Path]:
        return sorted(self.archive_dir.glob(f"{vg}_*.vg"))

    def vgs_truth(self, vg: str) -> Dict:
        """The VG as LVM on node A reads it from disk.

        {"name", "uuid", "seqno", "extent_size", "mda_count", "tags",
         "pv_uuids": [...], "pvs": [{"uuid", "device", "mda_count"}],
         "lv_names": [...], "lvs": {name: {"uuid", "size", "tags"}}}
        """
        if self.name != "a":
            raise LabError("ground truth is read on node A only")

        def report(cmd, fields, key):
            r = self.lvm(cmd, "--reportformat", "json", "--units", "b",
                         "--nosuffix", "-o", fields, vg)
            return json.loads(r.stdout)["report"][0][key]

        v = report("vgs", "vg_name,vg_uuid,vg_seqno,vg_extent_size,"
                          "vg_mda_count,vg_tags", "vg")[0]
        # pvs takes PV names, not a VG: select the VG's PVs by uuid.
        pvs = json.loads(self.lvm(
            "pvs", "--reportformat", "json", "-o", "pv_name,pv_uuid,pv_mda_count",
            "--select", f"vg_uuid={v['vg_uuid']}").stdout)["report"][0]["pv"]
        lvs = report("lvs", "lv_name,lv_uuid,lv_size,lv_tags", "lv")
        return {
            "name": v["vg_name"],
            "uuid": v["vg_uuid"],
            "seqno": int(v["vg_seqno"]),
            "extent_size": int(v["vg_extent_size"]),
            "mda_count": int(v["vg_mda_count"]),
            "tags": [t for t in v["vg_tags"].split(",") if t],
            "pv_uuids": sorted(p["pv_uuid"] for p in pvs),
            "pvs": [{"uuid": p["pv_uuid"], "device": p["pv_name"],
                     "mda_count": int(p["pv_mda_count"])} for p in pvs],
            "lv_names": sorted(l["lv_name"] for l in lvs),
            "lvs": {l["lv_name"]: {"uuid": l["lv_uuid"], "size": int(l["lv_size"]),
                                   "tags": [t for t in l["lv_tags"].split(",") if t]}
                    for l in lvs},
        }


class Lab:
    """A two-node lab in ``workdir``. Use as a context manager or call close()."""

    def __init__(self, workdir):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.image_dir = self.workdir / "images"
        self.image_dir.mkdir(exist_ok=True)
        self.disks: List[Disk] = []
        self._loops: Dict[str, Path] = {}   # every loop we attached -> image
        self._images: List[Path] = []
        self._closed = False
        self.fuse = None                    # FuseDisk, started by add_fuse_disk
        self.a = Node(self, "a")
        self.b = Node(self, "b")
        atexit.register(self.close)

    @property
    def nodes(self):
        return (self.a, self.b)

    def node(self, which) -> Node:
        name = getattr(which, "name", which)
        if name not in ("a", "b"):
            raise ValueError(f"no node {which!r}")
        return getattr(self, name)

    # -- loops
    def _attach(self, path: Path, sector_size: int) -> str:
        cmd = ["losetup", "-f", "--show"]
        if sector_size != 512:
            cmd += ["--sector-size", str(sector_size)]
        # losetup -f can race another process taking the same free loop.
        for attempt in range(5):
            r = _run(cmd + [str(path)], check=False)
            if r.returncode == 0:
                dev = r.stdout.strip()
                self._loops[dev] = Path(path)
                return dev
            time.sleep(0.1 * (attempt + 1))
        raise LabError(f"losetup failed for {path}: {r.stderr.strip()}")

    def _ours(self, dev: str) -> bool:
        """Is ``dev`` still attached to the file we attached it to?"""
        try:
            back = Path(f"/sys/block/{Path(dev).name}/loop/backing_file").read_text().strip()
        except OSError:
            return False
        back = back.removesuffix(" (deleted)")
        return os.path.realpath(back) == os.path.realpath(self._loops[dev])

    def _detach_loop(self, dev: str, tries: int = 20, gone_within: float = 30.0) -> None:
        if dev not in self._loops:
            raise LabError(f"{dev} was not attached by this lab")
        err = ""
        for attempt in range(tries):
            if not self._ours(dev):
                break
            r = _run(["losetup", "-d", dev], check=False)
            if r.returncode == 0:
                break
            err = r.stderr.strip()
            time.sleep(0.05 * (attempt + 1))
        else:
            raise LabError(f"cannot detach {dev}: {err}")
        # `losetup -d` on a loop that another process holds open (an LVM
        # scan elsewhere on the machine) only marks it for autoclear: it goes
        # when that process lets go.  Wait for that, bounded.
        deadline = time.monotonic() + gone_within
        while self._ours(dev):
            if time.monotonic() > deadline:
                raise LabError(f"{dev} still attached {gone_within:g}s after losetup -d "
                               f"(held open by another process?)")
            time.sleep(0.1)
        del self._loops[dev]

    def _regen(self) -> None:
        for n in self.nodes:
            n.write_conf()

    # -- disks
    def add_disk(self, name: str, size_mib: int = 16, sector_size: int = 512,
                 nodes=("a", "b")) -> Disk:
        """A sparse image attached on each of ``nodes`` (default both)."""
        self._check_name(name)
        image = self.image_dir / f"{name}.img"
        with open(image, "xb") as f:
            f.truncate(size_mib * MIB)
        self._images.append(image)
        disk = Disk(name, image, size_mib, sector_size)
        self.disks.append(disk)
        for n in nodes:
            setattr(disk, self.node(n).name, self._attach(image, sector_size))
        self._regen()
        return disk

    def add_fuse_disk(self, name: str, size_mib: int = 16, sector_size: int = 512,
                      via=("b",), nodes=("a", "b"), delay_ms: int = 0) -> Disk:
        """A disk whose image lives behind the lab's FUSE mount.

        Nodes in ``via`` attach their loop over the FUSE view (so
        ``lab.block(disk)`` hangs their reads); other nodes in ``nodes``
        attach the backing file directly. Same bytes either way.
        """
        self._check_name(name)
        fd = self._fuse(delay_ms)
        backing = Path(fd.backing_dir) / f"{name}.img"
        with open(backing, "xb") as f:
            f.truncate(size_mib * MIB)
        self._images.append(backing)
        disk = Disk(name, backing, size_mib, sector_size, fuse_name=backing.name,
                    fuse_nodes=tuple(self.node(n).name for n in via))
        self.disks.append(disk)
        for n in nodes:
            n = self.node(n).name
            path = fd.path(backing.name) if n in disk.fuse_nodes else backing
            setattr(disk, n, self._attach(path, sector_size))
        self._regen()
        return disk

    def _fuse(self, delay_ms: int):
        if self.fuse is None:
            from fusedisk import FuseDisk
            self.fuse = FuseDisk(self.workdir / "fuse-backing",
                                 self.workdir / "fuse-mnt", delay_ms=delay_ms)
        elif delay_ms:
            self.fuse.set_delay(delay_ms)
        return self.fuse

    def block(self, disk: Disk, writes: bool = False) -> None:
        """Hold reads of a FUSE disk on the nodes it was attached ``via``."""
        if not disk.fuse_name:
            raise LabError(f"{disk.name} is not a FUSE disk")
        self.fuse.block(disk.fuse_name, writes=writes)

    def unblock(self, disk: Disk) -> None:
        self.fuse.unblock(disk.fuse_name)

    def _check_name(self, name: str) -> None:
        if any(d.name == name for d in self.disks):
            raise ValueError(f"disk {name!r} already exists")
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad disk name {name!r}")

    def _image_for(self, disk: Disk, node: Node) -> Path:
        if disk.fuse_name and node.name in disk.fuse_nodes:
            return Path(self.fuse.path(disk.fuse_name))
        return disk.image

    def detach(self, disk: Disk, node) -> None:
        """Make ``disk`` vanish from ``node``."""
        node = self.node(node)
        dev = disk.on(node)
        if dev is None:
            raise LabError(f"{disk.name} is not attached on node {node.name}")
        self._detach_loop(dev)
        setattr(disk, node.name, None)
        self._regen()

    def reattach(self, disk: Disk, node) -> str:
        """Attach ``disk`` on ``node`` again (any free loop). Returns its path."""
        node = self.node(node)
        if disk.on(node) is not None:
            raise LabError(f"{disk.name} is already attached on node {node.name}")
        dev = self._attach(self._image_for(disk, node), disk.sector_size)
        setattr(disk, node.name, dev)
        self._regen()
        return dev

    def move(self, disk: Disk, node) -> str:
        """Give ``disk`` another loop name on ``node``: attach the new loop
        before detaching the old one, so the name always changes."""
        node = self.node(node)
        old = disk.on(node)
        new = self._attach(self._image_for(disk, node), disk.sector_size)
        setattr(disk, node.name, new)
        if old is not None:
            self._detach_loop(old)
        self._regen()
        return new

    @property
    def loops(self) -> List[str]:
        """Loop devices currently attached by this lab."""
        return sorted(self._loops)

    # -- teardown
    def close(self) -> None:
        """Unblock FUSE, detach our loops, unmount, remove images. Idempotent."""
        if self._closed:
            return
        errors = []
        # 1. A held read keeps its loop busy and its reader in D state:
        #    release it before anything else.
        if self.fuse is not None:
            try:
                self.fuse.unblock_all()
            except Exception as e:           # server gone: reads already failed
                errors.append(f"unblock: {e}")
        # 2. Detach exactly the loops we attached (checked against their
        #    backing file, so a number reused by someone else is left alone).
        for dev in list(self._loops):
            try:
                self._detach_loop(dev)
            except Exception as e:
                errors.append(str(e))
        # 3. Unmount FUSE, stop its server.
        if self.fuse is not None:
            try:
                self.fuse.close()
            except Exception as e:
                errors.append(f"fuse close: {e}")
        for image in self._images:
            try:
                image.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"rm {image}: {e}")
        for d in self.disks:
            d.a = d.b = None
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        if errors:
            raise LabError("lab teardown: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_vg(lab: Lab, vg: str, disks: List[Disk], *pvcreate_args, lvs=("lv1",)) -> List[Disk]:
    """Node A makes every disk a PV (with ``pvcreate_args``), ``vg`` over
    them and a 4 MiB LV for each name in ``lvs``: the usual starting point
    of a test.  Returns ``disks``."""
    lab.a.lvm("pvcreate", *pvcreate_args, *[d.a for d in disks])
    lab.a.lvm("vgcreate", vg, *[d.a for d in disks])
    for lv in lvs:
        lab.a.lvm("lvcreate", "-L", "4m", "-n", lv, vg)
    return disks


# ------------------------------------------------------------------ raw PV
# A tiny independent reader of what LVM wrote (docs: /work/shared/LVM2-FORMAT.md)
# so tests and the fixture script can check layout facts (wrap, orphan)
# without depending on the package under test.

def _crc(data: bytes, seed: int = 0xF597A6CF) -> int:
    import zlib
    return zlib.crc32(data, seed ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def pv_layout(path) -> Dict:
    """Label, pv_header and mda headers of a PV image or device.

    {"label_sector", "pv_uuid" (dashed), "device_size", "data_areas":
    [(off, size)], "mdas": [{"start", "size", "offset", "text_size",
    "checksum", "flags", "ignored", "wraps", "orphan", "header_crc_ok"}]}
    """
    with open(path, "rb") as f:
        head = f.read(2048)
        for sector in range(4):
            s = head[sector * 512:(sector + 1) * 512]
            if s[:8] == b"LABELONE" and s[24:32] == b"LVM2 001":
                break
        else:
            raise ValueError(f"{path}: no LVM2 label")
        off = struct.unpack_from("<I", s, 20)[0]
        raw_uuid = s[off:off + 32].decode()
        dev_size = struct.unpack_from("<Q", s, off + 32)[0]
        p = off + 40

        def locns():
            nonlocal p
            out = []
            while True:
                o, z = struct.unpack_from("<QQ", s, p)
                p += 16
                if o == 0:
                    return out
                out.append((o, z))

        das, mda_locns = locns(), locns()
        mdas = []
        for start, size in mda_locns:
            f.seek(start)
            h = f.read(512)
            (crc,) = struct.unpack_from("<I", h, 0)
            r_off, r_size, r_crc, r_flags = struct.unpack_from("<QQII", h, 40)
            mdas.append({
                "start": start, "size": size, "offset": r_off, "text_size": r_size,
                "checksum": r_crc, "flags": r_flags, "ignored": bool(r_flags & 1),
                "wraps": r_off + r_size > size, "orphan": r_off == 0,
                "header_crc_ok": _crc(h[4:512]) == crc,
            })
    u = raw_uuid
    dashed = "-".join((u[0:6], u[6:10], u[10:14], u[14:18], u[18:22], u[22:26], u[26:32]))
    return {"label_sector": sector, "pv_uuid": dashed, "device_size": dev_size,
            "data_areas": das, "mdas": mdas}


def churn_until_wrapped(node: Node, vg: str, image, max_commits: int) -> Optional[Dict]:
    """Commit ``vg`` on ``node`` (create, then remove, an LV ``churn``) until
    the committed copy in the first mda of ``image`` wraps around the end of
    its ring with at least 128 bytes on each side (a 1-byte wrap proves
    little).  Returns that mda's header (see pv_layout), or None if it never
    wrapped within ``max_commits`` commits.  The callers make the copies big
    and the area small (``--metadatasize 64k``, a few LVs) so it wraps soon."""
    for n in range(max_commits):
        if n % 2 == 0:
            node.lvm("lvcreate", "-L", "64k", "-n", "churn", vg)
        else:
            node.lvm("lvremove", "-f", f"{vg}/churn")
        m = pv_layout(image)["mdas"][0]
        tail = m["size"] - m["offset"]
        if m["wraps"] and tail >= 128 and m["text_size"] - tail >= 128:
            return m
    return None


def read_mda_text(path, mda: Dict) -> str:
    """The committed text of one mda (handles the ring wrap), without the NUL."""
    start, size, o, z = mda["start"], mda["size"], mda["offset"], mda["text_size"]
    wrap = max(0, o + z - size)
    with open(path, "rb") as f:
        f.seek(start + o)
        data = f.read(z - wrap)
        if wrap:
            f.seek(start + 512)
            data += f.read(wrap)
    if _crc(data) != mda["checksum"]:
        raise ValueError(f"{path}: mda text checksum mismatch at {start}+{o}")
    return data.rstrip(b"\0").decode()


# ------------------------------------------------------------ node config
# For the readiness tests (issue 8): a node's own LVM configuration beyond
# the lab's lvm.conf, and what that node's LVM sees.

def set_lvmlocal(node: Node, text: str) -> Path:
    """Write ``node``'s lvmlocal.conf (LVM reads it over lvm.conf, key by
    key, in any section; the lab never rewrites it, unlike lvm.conf)."""
    path = node.system_dir / "lvmlocal.conf"
    tmp = node.system_dir / "lvmlocal.conf.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def devices_file(node: Node) -> Path:
    """The default devices file of ``node``."""
    return node.system_dir / "devices" / "system.devices"


def lvmdevices(node: Node, *args, check: bool = True):
    """``lvm lvmdevices ARGS`` as ``node`` (Debian 12 has no lvmdevices
    command); it reads PV labels and writes only the devices file."""
    return node.lvm("lvmdevices", *args, check=check)


def node_sees(node: Node) -> Dict[str, Dict]:
    """The PVs ``node``'s own LVM sees, without touching its backup:
    ``pvs --config backup/backup=0``.  {pv_uuid: {"device", "vg"}}; a PV
    that a VG's metadata names but the node does not see ("[unknown]") is
    left out."""
    r = node.lvm("pvs", "--config", "backup/backup=0", "--reportformat", "json",
                 "-o", "pv_name,pv_uuid,vg_name", allow_report=True)
    pvs = json.loads(r.stdout)["report"][0]["pv"]
    return {p["pv_uuid"]: {"device": p["pv_name"], "vg": p["vg_name"]} for p in pvs
            if p["pv_name"] != "[unknown]"}


def lvm_systemid(node: Node, *config) -> str:
    """``lvm systemid`` as ``node`` (with --config strings): the ID, "" for none."""
    args = []
    for c in config:
        args += ["--config", c]
    r = node.lvm("systemid", *args)
    for line in r.stdout.splitlines():
        if "system ID:" in line:
            return line.split("system ID:", 1)[1].strip()
    return ""


def would_autoactivate(node: Node, vg: str) -> List[str]:
    """The LVs ``node``'s LVM would autoactivate in ``vg``: ``vgchange -aay
    -vv --driverloaded n`` prints "Activating logical volume" exactly for
    them (nothing is activated without device-mapper; backup/backup=0
    leaves the node's backup alone)."""
    r = node.lvm("vgchange", "-aay", "-vv", "--config", "backup/backup=0", vg, check=False)
    out = []
    for line in (r.stdout + r.stderr).splitlines():
        if "Activating logical volume" in line:
            out.append(line.split("Activating logical volume", 1)[1].strip().split()[0].rstrip("."))
    return out


def allow_autoactivation(node: Node) -> None:
    """Leave activation/auto_activation_volume_list unset in ``node``'s
    lvm.conf (LVM's default: every VG is autoactivated), which the lab's
    nodes, like HA nodes, do not (lvmlocal.conf cannot unset a key)."""
    node.autoactivation = True
    node.write_conf()


# The tools the printed actions call; the lab has no device-mapper, so each
# is wrapped to add --driverloaded n (`lvm SUBCOMMAND ...` too).
ACTION_TOOLS = ("vgcfgbackup", "vgcfgrestore", "vgchange", "lvmdevices", "vgck")


def action_env(node: Node, bin_dir: Path) -> Dict[str, str]:
    """``node``'s environment for `sh -c` running printed actions, with the
    wrappers in ``bin_dir`` (made on first use) first on PATH."""
    lvm = shutil.which("lvm") or "lvm"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for tool in ACTION_TOOLS:
            (bin_dir / tool).write_text(f'#!/bin/sh\nexec {lvm} {tool} --driverloaded n "$@"\n')
        (bin_dir / "lvm").write_text(f'#!/bin/sh\nsub="$1"; shift\nexec {lvm} "$sub" --driverloaded n "$@"\n')
        for f in bin_dir.iterdir():
            f.chmod(0o755)
    return dict(node.env, PATH=f"{bin_dir}:{node.env['PATH']}")


def run_actions_as_b(lab: Lab, tmp_path: Path, vg: Dict) -> List[str]:
    """Runs one VG's printed actions in order as node B (action_env, the
    wrappers in tmp_path/bin)."""
    return run_actions(vg, action_env(lab.b, tmp_path / "bin"))


def run_actions(vg: Dict, env: Dict[str, str]) -> List[str]:
    """Runs the non-null commands of one VG's `actions` (a `check --format
    json` VG entry), in order, as a failover script would: `sh -c`, stopping
    at the first failure.  Returns the commands run."""
    ran = []
    for a in vg["actions"]:
        if a["command"] is None:
            continue
        r = subprocess.run(["sh", "-c", a["command"]], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (a, r.stderr)
        ran.append(a["command"])
    return ran

