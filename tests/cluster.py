"""Real Pacemaker clusters for the OCF agent tests, one set of Linux
namespaces per node.

Each node is ``unshare --net --mount --ipc --uts --pid --fork --mount-proc``
running ``init.sh`` (written here) as its PID 1. Inside, it mounts a tmpfs
on /dev/shm and bind-mounts its own copies of /run, /var/lib/pacemaker,
/var/lib/corosync, /var/log/pacemaker, /etc/corosync, the lab node's LVM
system dir over /etc/lvm, and a copy of /usr/lib/ocf/resource.d with the
agents of the working tree installed as provider ``vgdrift``; then it starts
``corosync -f`` and ``pacemakerd -f``. Nothing of the host's cluster state,
LVM configuration or network is touched: the net namespace is private, so
a single node runs its ring on its own 127.0.0.1, and two nodes talk over a
veth pair created straight into their two namespaces, with addresses that
exist only there. /dev is shared: the lab's loop devices are the shared
disks.

Commands run inside a node with ``nsenter`` (``node.run(...)``). A crash
is SIGKILL to the node's PID 1: the kernel then kills every process of its
PID namespace; with the last one gone, its mounts and veth end go too.
``Cluster.close()`` crashes every node still up and checks that no process
of any of their namespaces is left.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
AGENTS = REPO / "exporter" / "ocf"
OCF_ROOT = Path("/usr/lib/ocf")
HEALTH_ATTR = "#health-vgdrift"

# Programs a cluster test needs, and the Debian package of each.
NEEDED = {"corosync": "corosync", "pacemakerd": "pacemaker", "crm_mon": "pacemaker-cli-utils",
          "cibadmin": "pacemaker-cli-utils", "crm_resource": "pacemaker-cli-utils",
          "attrd_updater": "pacemaker-cli-utils", "ocf-tester": "resource-agents",
          "xmllint": "libxml2-utils", "unshare": "util-linux", "nsenter": "util-linux",
          "ip": "iproute2"}


def cluster_problem() -> Optional[str]:
    """Why a cluster cannot run here, or None."""
    missing = sorted({pkg for prog, pkg in NEEDED.items() if shutil.which(prog) is None})
    if missing:
        return "the Pacemaker tests need " + ", ".join(missing) + " (make system installs them)"
    if not (OCF_ROOT / "lib" / "heartbeat" / "ocf-shellfuncs").exists():
        return "the Pacemaker tests need resource-agents (ocf-shellfuncs)"
    return None


class ClusterError(RuntimeError):
    pass


# PID 1 of a node. It is a shell: children orphaned by daemons are
# re-parented to it; `wait` reaps them.
INIT_SH = r"""#!/bin/sh
set -eu
N="$1"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind "$N/run" /run
mount --bind "$N/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$N/var-lib-corosync" /var/lib/corosync
mount --bind "$N/var-log-pacemaker" /var/log/pacemaker
mount --bind "$N/etc-corosync" /etc/corosync
mount --bind "$2" /etc/lvm
mount --bind "$N/resource.d" /usr/lib/ocf/resource.d
hostname "$(cat "$N/name")"
ip link set lo up
touch "$N/ready"
while [ ! -e "$N/go" ]; do sleep 0.1; done
corosync -f >"$N/corosync.out" 2>&1 &
i=0
until corosync-cfgtool -s >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "corosync did not come up" >"$N/failed"; exit 1; }
    sleep 0.1
done
pacemakerd -f >"$N/pacemakerd.out" 2>&1 &
touch "$N/started"
set +e
while :; do wait; sleep 1; done
"""


def _run(cmd, check=True, timeout=60, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise ClusterError(f"{' '.join(map(str, cmd))} exited {r.returncode}: "
                           f"{r.stderr.strip() or r.stdout.strip()}")
    return r


def wait_for(what: str, cond, timeout: float = 60.0, step: float = 0.25):
    """Poll ``cond()`` until it returns a true value (returned), or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        err: Optional[Exception] = None
        try:
            last = cond()
        except (ClusterError, subprocess.TimeoutExpired) as e:
            last = None
            err = e
        if last:
            return last
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what}"
                               + (f" (last error: {err})" if err else ""))
        time.sleep(step)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies."""
    import ctypes
    import signal
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _chown_ha(path: Path, mode: int) -> None:
    shutil.chown(path, "hacluster", "haclient")
    path.chmod(mode)


class ClusterNode:
    def __init__(self, cluster: Cluster, name: str, nodeid: int, addr: str, lvm_system_dir: Path):
        self.cluster = cluster
        self.name = name
        self.nodeid = nodeid
        self.addr = addr
        self.lvm_system_dir = Path(lvm_system_dir)
        self.dir = cluster.workdir / name
        self.proc: Optional[subprocess.Popen] = None
        self.pid: Optional[int] = None          # host PID of the node's PID 1
        self.pidns: Optional[str] = None        # its PID namespace, "pid:[inode]"
        self.boots = 0

    def __repr__(self) -> str:
        return f"<ClusterNode {self.name} pid={self.pid}>"

    @property
    def up(self) -> bool:
        return self.pid is not None

    # -- life cycle
    def _prepare(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for f in ("ready", "go", "started", "failed"):
            (d / f).unlink(missing_ok=True)
        # /run is a tmpfs on a real node: a reboot starts with an empty one
        # (no resource state files, no daemon sockets of the last life).
        shutil.rmtree(d / "run", ignore_errors=True)
        (d / "run").mkdir()
        (d / "run").chmod(0o755)
        if self.boots == 0:
            vlp = d / "var-lib-pacemaker"
            vlp.mkdir()
            _chown_ha(vlp, 0o750)
            for sub in ("blackbox", "cib", "cores", "pengine"):
                (vlp / sub).mkdir()
                _chown_ha(vlp / sub, 0o750)
            (vlp / "cib" / "cib.xml").write_text(self.cluster.starting_cib())
            _chown_ha(vlp / "cib" / "cib.xml", 0o600)
            (d / "var-lib-corosync").mkdir()
            vlog = d / "var-log-pacemaker"
            vlog.mkdir()
            _chown_ha(vlog, 0o770)
            (d / "etc-corosync").mkdir()
            (d / "etc-corosync" / "corosync.conf").write_text(self.cluster.corosync_conf())
            (d / "name").write_text(self.name + "\n")
            (d / "init.sh").write_text(INIT_SH)
            # The installed agents: the resource-agents tree plus ours,
            # copied from the working tree.
            shutil.copytree(OCF_ROOT / "resource.d", d / "resource.d", symlinks=True)
            (d / "resource.d" / "vgdrift").mkdir()
            for agent in ("guard", "health"):
                shutil.copy2(AGENTS / agent, d / "resource.d" / "vgdrift" / agent)
                (d / "resource.d" / "vgdrift" / agent).chmod(0o755)

    def boot(self) -> None:
        """Start the node's namespaces and mounts (not yet the cluster)."""
        if self.up:
            raise ClusterError(f"{self.name} is already up")
        self._prepare()
        # $2: the lab's LVM dir of this node, seen by the node as /etc/lvm.
        # --kill-child: if unshare dies (below: when the test process dies,
        # even by SIGKILL), the node's PID 1 gets SIGKILL, and with it every
        # process of the node. Nothing outlives the test run.
        init = ["unshare", "--net", "--mount", "--ipc", "--uts", "--pid", "--kill-child",
                "--mount-proc", "--propagation", "private",
                "sh", str(self.dir / "init.sh"), str(self.dir), str(self.lvm_system_dir)]
        log = open(self.dir / f"init.{self.boots}.out", "w")
        try:
            proc = subprocess.Popen(init, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.proc = proc
        self.boots += 1

        def child():
            try:
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            except OSError:
                kids = []
            if proc.poll() is not None:
                raise ClusterError(f"{self.name}: unshare exited {proc.returncode}: "
                                   + self.init_output())
            return int(kids[0]) if kids else None

        def ready():
            if proc.poll() is not None:
                raise ClusterError(f"{self.name}: init exited: " + self.init_output())
            return (self.dir / "ready").exists()
        try:
            self.pid = wait_for(f"{self.name}'s PID 1", child, timeout=10, step=0.02)
            self.pidns = os.readlink(f"/proc/{self.pid}/ns/pid")
            wait_for(f"{self.name}'s mounts", ready, timeout=20, step=0.05)
        except BaseException:
            self.crash()
            raise

    def init_output(self) -> str:
        try:
            return (self.dir / f"init.{self.boots - 1}.out").read_text()[-2000:]
        except OSError:
            return ""

    def go(self) -> None:
        """Let the node start corosync and pacemakerd."""
        (self.dir / "go").touch()

    def crash(self) -> None:
        """SIGKILL the node's PID 1 (so every process in it) and wait until
        no process of its PID namespace is left. Idempotent."""
        proc, pid, ns = self.proc, self.pid, self.pidns
        if proc is None:
            return
        for victim in (pid, proc.pid):      # unshare too: --kill-child covers a PID 1
            if victim is None:              # it never reported
                continue
            try:
                os.kill(victim, 9)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{self.name}: unshare {proc.pid} did not exit after "
                               f"SIGKILL") from None
        if ns is not None:
            wait_for(f"the processes of {self.name} to go", lambda: not pids_in_ns(ns),
                  timeout=30, step=0.1)
        self.pid = None
        self.pidns = None
        self.proc = None

    # -- inside the node
    def run(self, *cmd, check: bool = True, timeout: float = 60, input: Optional[str] = None):
        if not self.up:
            raise ClusterError(f"{self.name} is down")
        return _run(["nsenter", "--target", self.pid, "--mount", "--uts", "--ipc", "--net",
                     "--pid", "--", *cmd], check=check, timeout=timeout, input=input)

    def mon(self) -> ET.Element:
        """``crm_mon --output-as=xml`` on this node, parsed."""
        r = self.run("crm_mon", "-1", "--output-as=xml", "--include=all", check=False, timeout=30)
        if not r.stdout.strip().startswith("<"):
            raise ClusterError(f"crm_mon on {self.name}: {r.stderr.strip()}")
        return ET.fromstring(r.stdout)

    def health(self) -> Optional[str]:
        """This node's #health-vgdrift as its attribute manager holds it
        (None: not set)."""
        r = self.run("attrd_updater", "--query", "--name", HEALTH_ATTR, check=False, timeout=30)
        for line in r.stdout.splitlines():
            # name="#health-vgdrift" host="node1" value="green"
            if 'value="' in line:
                return line.split('value="', 1)[1].split('"', 1)[0] or None
        return None

    def logs(self) -> str:
        out = []
        for f in ("corosync.out", "pacemakerd.out", "var-log-pacemaker/pacemaker.log"):
            p = self.dir / f
            if p.exists():
                out.append(f"== {self.name} {f}\n" + p.read_text(errors="replace")[-4000:])
        return "\n".join(out)


def pids_in_ns(pidns: str) -> List[int]:
    """Host PIDs of the processes in the PID namespace ``pidns``."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{p}/ns/pid") == pidns:
                out.append(int(p))
        except OSError:
            pass
    return out


class Cluster:
    """``len(lvm_dirs)`` nodes (1 or 2) named node1, node2..., node i with
    the LVM system dir ``lvm_dirs[i]``. ``start()`` boots them and waits
    until all are online with a DC; ``close()`` (idempotent) crashes all."""

    SUBNET = "10.213.47"       # only ever on the veths inside our namespaces

    def __init__(self, workdir, lvm_dirs, properties: Optional[Dict[str, str]] = None):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if len(lvm_dirs) not in (1, 2):
            raise ValueError("1 or 2 nodes")
        self.properties = {"dc-deadtime": "5s", "stonith-enabled": "false",
                           "no-quorum-policy": "ignore", "cluster-recheck-interval": "1min"}
        self.properties.update(properties or {})
        self.nodes = []
        for i, lvm in enumerate(lvm_dirs, 1):
            addr = "127.0.0.1" if len(lvm_dirs) == 1 else f"{self.SUBNET}.{i}"
            self.nodes.append(ClusterNode(self, f"node{i}", i, addr, lvm))
        self._closed = False
        atexit.register(self.close)

    def node(self, name: str) -> ClusterNode:
        (n,) = [n for n in self.nodes if n.name == name]
        return n

    # -- configuration files
    def corosync_conf(self) -> str:
        two = len(self.nodes) == 2
        nodes = "".join(f"""    node {{
        ring0_addr: {n.addr}
        name: {n.name}
        nodeid: {n.nodeid}
    }}
""" for n in self.nodes)
        return f"""# Written by tests/cluster.py.
totem {{
    version: 2
    cluster_name: vgdriftlab
    transport: {"knet" if two else "udpu"}
    crypto_cipher: none
    crypto_hash: none
}}
nodelist {{
{nodes}}}
quorum {{
    provider: corosync_votequorum
{"    two_node: 1" if two else ""}
}}
logging {{
    to_stderr: yes
    to_logfile: no
    to_syslog: no
    timestamp: on
}}
"""

    def starting_cib(self) -> str:
        props = "".join(f'        <nvpair id="opt-{k}" name="{k}" value="{v}"/>\n'
                        for k, v in self.properties.items())
        return f"""<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
{props}      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""

    # -- life cycle
    def start(self) -> None:
        for n in self.nodes:
            n.boot()
        if len(self.nodes) == 2:
            self._link()
        for n in self.nodes:
            n.go()
        self.wait_online(self.nodes)

    def _link(self) -> None:
        """A veth pair straight into the two nodes' net namespaces."""
        a, b = self.nodes
        _run(["ip", "link", "add", "name", "vd1", "netns", a.pid, "type", "veth",
              "peer", "name", "vd2", "netns", b.pid])
        for n, dev in ((a, "vd1"), (b, "vd2")):
            n.run("ip", "addr", "replace", f"{n.addr}/24", "dev", dev)
            n.run("ip", "link", "set", dev, "up")

    def restart(self, node: ClusterNode) -> None:
        """Boot a crashed node again (like a reboot) and wait until it is
        online."""
        node.boot()
        if len(self.nodes) == 2:
            self._link()
        node.go()
        self.wait_online([n for n in self.nodes if n.up])

    def up_nodes(self) -> List[ClusterNode]:
        return [n for n in self.nodes if n.up]

    def wait_online(self, nodes, timeout: float = 90) -> None:
        names = {n.name for n in nodes}

        def ok():
            for n in nodes:
                if (n.dir / "failed").exists():
                    raise ClusterError((n.dir / "failed").read_text())
                mon = n.mon()
                dc = mon.find("summary/current_dc")
                if dc is None or dc.get("present") != "true":
                    return False
                online = {e.get("name") for e in mon.iter("node") if e.get("online") == "true"
                          and e.get("name")}
                if not names <= online:
                    return False
            return True
        try:
            wait_for(f"nodes {sorted(names)} online with a DC", ok, timeout=timeout, step=0.5)
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.logs()}") from None

    def any_up(self) -> ClusterNode:
        for n in self.nodes:
            if n.up:
                return n
        raise ClusterError("no node is up")

    def crm(self, *cmd, **kw):
        """A command on any node that is up."""
        return self.any_up().run(*cmd, **kw)

    def settle(self, timeout: int = 60) -> None:
        """``crm_resource --wait``: until the cluster has nothing left to do."""
        self.crm("crm_resource", "--wait", f"--timeout={timeout}s", timeout=timeout + 15)

    def logs(self) -> str:
        return "\n".join(n.logs() for n in self.nodes)

    def close(self) -> None:
        if self._closed:
            return
        errors = []
        for n in self.nodes:
            try:
                n.crash()
            except Exception as e:
                errors.append(f"{n.name}: {e}")
        self._closed = True
        atexit.unregister(self.close)
        if errors:
            raise ClusterError("cluster teardown: " + "; ".join(errors))

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------ resources

def nvpairs(prefix: str, tag: str, params: Dict[str, str]) -> str:
    if not params:
        return ""
    pairs = "".join(f'<nvpair id="{prefix}-{k}" name="{k}" value="{_xml(v)}"/>'
                    for k, v in params.items())
    return f'<{tag} id="{prefix}-{tag}">{pairs}</{tag}>'


def _xml(s: str) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def primitive(rid: str, agent: str, params=None, ops=None, meta=None, per_node=None) -> str:
    """``agent`` is "provider:type" of class ocf; ``ops`` {name: (interval,
    timeout)}; ``per_node`` {node name: params}: one instance attribute set
    per node, chosen by a rule on #uname (one resource, nodes whose caches,
    devices and LVM dirs differ)."""
    provider, typ = agent.split(":")
    op_xml = "".join(f'<op id="{rid}-{name}-{iv}" name="{name}" interval="{iv}" timeout="{to}"/>'
                     for name, (iv, to) in (ops or {}).items())
    node_sets = ""
    for node, p in (per_node or {}).items():
        rule = (f'<rule id="{rid}-{node}-rule" score="0"><expression id="{rid}-{node}-expr" '
                f'attribute="#uname" operation="eq" value="{node}"/></rule>')
        pairs = "".join(f'<nvpair id="{rid}-{node}-{k}" name="{k}" value="{_xml(v)}"/>'
                        for k, v in p.items())
        node_sets += f'<instance_attributes id="{rid}-{node}-ia">{rule}{pairs}</instance_attributes>'
    return (f'<primitive id="{rid}" class="ocf" provider="{provider}" type="{typ}">'
            + node_sets
            + nvpairs(rid, "instance_attributes", params or {})
            + nvpairs(rid + "-m", "meta_attributes", meta or {})
            + (f"<operations>{op_xml}</operations>" if op_xml else "")
            + "</primitive>")


def resource_state(mon: ET.Element, rid: str) -> List[str]:
    """Nodes where resource ``rid`` is active, from crm_mon XML."""
    out = []
    for r in mon.iter("resource"):
        if r.get("id") == rid and r.get("active") == "true":
            out += [n.get("name", "") for n in r.iter("node")]
    return out


def failures(mon: ET.Element, rid: str) -> List[Dict[str, str]]:
    """The failed operations of ``rid`` that crm_mon lists (with exitreason)."""
    return [dict(f.attrib) for f in mon.iter("failure")
            if f.get("op_key", "").startswith(rid + "_")]


def guard_group(params: Dict[str, str], vg: str, gid: str = "grp", per_node=None) -> str:
    """The group of the issue: {guard for ``vg``, ocf:pacemaker:Dummy}
    (Dummy stands for LVM-activate and what follows it). The guard's start
    timeout is the advertised rule: twice its ``timeout`` plus 10 s."""
    t = int(params.get("timeout", "10"))
    guard = primitive("guard", "vgdrift:guard", dict(params, vgname=vg), per_node=per_node,
                      ops={"start": ("0", f"{2 * t + 10}s"), "stop": ("0", "20s"),
                           "monitor": ("10s", "20s")})
    dummy = primitive("dummy", "pacemaker:Dummy", ops={"monitor": ("10s", "20s")})
    return f'<group id="{gid}">{guard}{dummy}</group>'


def health_clone(params: Dict[str, str], interval: str = "2s", per_node=None) -> str:
    """The health agent cloned on every node, with allow-unhealthy-nodes
    (without it, under migrate-on-red, it stops on a red node, its stop
    removes the attribute, and it flaps)."""
    t = int(params.get("timeout", "10"))
    health = primitive("health", "vgdrift:health", params, per_node=per_node,
                       ops={"start": ("0", f"{t + 10}s"), "stop": ("0", "20s"),
                            "monitor": (interval, f"{t + 10}s")})
    return ('<clone id="health-clone"><meta_attributes id="health-clone-meta">'
            '<nvpair id="health-clone-auh" name="allow-unhealthy-nodes" value="true"/>'
            f'</meta_attributes>{health}</clone>')


def sync_links(linkdir: Path, lab, node) -> None:
    """Make ``linkdir`` hold one symlink per disk attached on lab ``node``
    (named after the disk, to its current loop) and nothing else. The
    agents' ``devices`` is ``linkdir/*``: a loop name freed by a detach can
    be reused by anyone on this machine, a name in this directory cannot."""
    linkdir.mkdir(parents=True, exist_ok=True)
    want = {d.name: d.on(node) for d in lab.disks if d.on(node)}
    for p in linkdir.iterdir():
        if p.name not in want or os.readlink(p) != want[p.name]:
            p.unlink()
    for name, dev in want.items():
        p = linkdir / name
        if not p.is_symlink():
            p.symlink_to(dev)


def vg_cached_on_b(lab, tmp_path: Path, vg: str):
    """A VG over two new disks, node B's cache in sync with it, and B's
    loops as links in tmp_path/dev-b (sync_links).  Returns (links, disks).
    Made by node A's LVM (tests/lab.py)."""
    from lab import make_vg
    require_cluster()
    disks = (lab.add_disk("d1"), lab.add_disk("d2"))
    make_vg(lab, vg, list(disks))
    lab.b.vgcfgbackup(vg)
    links = tmp_path / "dev-b"
    sync_links(links, lab, "b")
    return links, disks


def require_cluster() -> None:
    """Fail (skip with VGDRIFT_SKIP_LAB=1), like the lab, where a cluster
    cannot run: on CI it must."""
    import pytest
    problem = cluster_problem()
    if problem is None:
        return
    if os.environ.get("VGDRIFT_SKIP_LAB") == "1":
        pytest.skip(problem + " (VGDRIFT_SKIP_LAB=1)")
    pytest.fail(problem + "; set VGDRIFT_SKIP_LAB=1 to skip lab tests", pytrace=False)


def vgdrift_binary() -> str:
    """The vgdrift script of the Python running the tests (the venv's)."""
    import sys
    p = Path(sys.executable).parent / "vgdrift"
    if p.exists():
        return str(p)
    found = shutil.which("vgdrift")
    if not found:
        raise ClusterError("no vgdrift script beside the test's Python nor on PATH")
    return found


def agent_params(node, linkdir: Path, timeout: int = 5) -> Dict[str, str]:
    """The agents' parameters for lab ``node``: its cache, its loops (by
    the links in ``linkdir``), its LVM system dir."""
    return {"binary": vgdrift_binary(), "cache_dir": str(node.backup_dir),
            "devices": f"{linkdir}/*", "lvm_system_dir": str(node.system_dir),
            "timeout": str(timeout)}


def wait_offline(cluster: Cluster, gone: ClusterNode, timeout: float = 60) -> None:
    """Until every node still up sees ``gone`` offline (after a crash,
    before anything is asked of the survivors: a `crm_resource --wait`
    before that has nothing to wait for)."""
    def ok():
        for n in cluster.up_nodes():
            for e in n.mon().iter("node"):
                if e.get("name") == gone.name and e.get("online") == "true":
                    return False
        return True
    wait_for(f"{gone.name} offline", ok, timeout=timeout, step=0.25)


def node_attr(cluster: Cluster, node_name: str, name: str = HEALTH_ATTR) -> Optional[str]:
    """A transient node attribute as the CIB holds it (None: not set)."""
    r = cluster.crm("crm_attribute", "--node", node_name, "--name", name, "--lifetime",
                    "reboot", "--query", "--quiet", check=False, timeout=30)
    value = r.stdout.strip()
    return value if r.returncode == 0 and value else None


def started_on(mon: ET.Element, rid: str, node_name: str) -> bool:
    """Did ``node_name``'s history (crm_mon) record a start of ``rid``
    (successful or not)?"""
    for n in mon.iter("node"):
        if n.get("name") != node_name:
            continue
        for r in n.iter("resource_history"):
            if r.get("id") == rid and any(op.get("task") == "start"
                                          for op in r.iter("operation_history")):
                return True
    return False
