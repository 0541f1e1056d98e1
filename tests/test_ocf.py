"""The OCF resource agents (exporter/ocf/guard, exporter/ocf/health) outside a
cluster: resource-agents' ocf-tester, the meta-data against resource-agents'
ra-api-1.dtd, and the guard's decisions on the lab's node B (its cache, its
loops, its LVM system dir). On a real cluster: test_lab_pacemaker*.py.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from cluster import AGENTS, agent_params, require_cluster, sync_links, vg_cached_on_b
from lab import pv_layout

DTD = Path("/usr/share/resource-agents/ra-api-1.dtd")
VG = "vgha"

# OCF exit codes, restated: a change to them must break this test.
OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_INSTALLED, OCF_ERR_CONFIGURED, OCF_NOT_RUNNING = 0, 1, 5, 6, 7


@pytest.fixture
def agents():
    """The agents copied to a directory everyone can traverse: ocf-tester
    runs meta-data as nobody, and a checkout may live under a private
    directory."""
    d = tempfile.mkdtemp(prefix="vgdrift-ocf-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        for a in ("guard", "health"):
            shutil.copy2(AGENTS / a, Path(d) / a)
            os.chmod(Path(d) / a, 0o755)
        yield Path(d)
    finally:
        shutil.rmtree(d)


@pytest.fixture
def node_b(lab, tmp_path):
    """A VG over two disks, node B's cache in sync; B's loops as links."""
    links, disks = vg_cached_on_b(lab, tmp_path, VG)
    return lab, links, disks


def run_agent(agent: Path, action: str, params, rsctmp: Path, instance: str = "t"):
    """One action, as Pacemaker's executor would run it. Returns
    (exit code, exit reason or None, stderr)."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": instance,
           "HA_RSCTMP": str(rsctmp), "OCF_RESKEY_CRM_meta_timeout": "60000"}
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    r = subprocess.run([str(agent), action], env=env, capture_output=True, text=True, timeout=120)
    reasons = [line.split(":", 1)[1] for line in r.stderr.splitlines()
               if line.startswith("ocf-exit-reason:")]
    assert len(reasons) <= 1, r.stderr
    return r.returncode, (reasons[0] if reasons else None), r.stderr


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ meta-data

@pytest.mark.parametrize("name", ["guard", "health"])
def test_meta_data_valid_against_ra_api_dtd(name):
    require_cluster()
    meta = subprocess.run([str(AGENTS / name), "meta-data"], capture_output=True, text=True,
                          timeout=30, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert meta.returncode == 0, meta.stderr
    assert '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">' in meta.stdout
    # Run where the DOCTYPE's relative system id resolves, as ocf-tester does.
    r = subprocess.run(["xmllint", "--noout", "--nonet", "--dtdvalid", str(DTD), "-"],
                       input=meta.stdout, capture_output=True, text=True, timeout=30,
                       cwd=DTD.parent)
    assert r.returncode == 0 and not r.stderr, r.stderr


def test_meta_data_rejected_when_invalid():
    """The DTD check can fail: a 1.1-only element is refused."""
    require_cluster()
    meta = subprocess.run([str(AGENTS / "guard"), "meta-data"], capture_output=True, text=True,
                          timeout=30).stdout
    bad = meta.replace('<parameter name="refresh">', '<parameter name="refresh" reloadable="1">')
    assert bad != meta
    r = subprocess.run(["xmllint", "--noout", "--nonet", "--dtdvalid", str(DTD), "-"],
                       input=bad, capture_output=True, text=True, timeout=30, cwd=DTD.parent)
    assert r.returncode != 0


# ------------------------------------------------------------------ ocf-tester

@pytest.mark.parametrize("name", ["guard", "health"])
def test_ocf_tester(node_b, agents, tmp_path, name):
    lab, links, _ = node_b
    params = agent_params(lab.b, links)
    if name == "guard":
        params["vgname"] = VG
    cmd = ["ocf-tester", "-n", f"vgdrift-test-{name}"]
    for k, v in params.items():
        cmd += ["-o", f"{k}={v}"]
    rsctmp = tmp_path / "rsctmp"
    rsctmp.mkdir()
    r = subprocess.run(cmd + [str(agents / name)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HA_RSCTMP=str(rsctmp)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{agents / name} passed all tests" in r.stdout
    assert list(rsctmp.iterdir()) == [], "the agent left a state file after its last stop"


# ------------------------------------------------------------------ the guard

def test_guard_validate_all(node_b, tmp_path):
    lab, links, _ = node_b
    guard = AGENTS / "guard"
    params = dict(agent_params(lab.b, links), vgname=VG)
    assert run_agent(guard, "validate-all", params, tmp_path)[0] == OCF_SUCCESS
    # No cache_dir: vgdrift's default, the backup_dir of the node's LVM
    # configuration (the lab's lvm.conf sets it to node B's backup dir).
    assert run_agent(guard, "validate-all", dict(params, cache_dir=""), tmp_path)[0] == OCF_SUCCESS
    rc, reason, _ = run_agent(guard, "validate-all", dict(params, vgname=""), tmp_path)
    assert (rc, reason) == (OCF_ERR_CONFIGURED, "vgname is not set")
    rc, reason, _ = run_agent(guard, "validate-all", dict(params, vgname="nosuchvg"), tmp_path)
    assert rc == OCF_ERR_CONFIGURED and "nosuchvg is not in the cache" in reason, reason
    rc, reason, _ = run_agent(guard, "validate-all", dict(params, binary=str(tmp_path / "nope")),
                              tmp_path)
    assert rc == OCF_ERR_INSTALLED and "not found" in reason, reason
    rc, reason, _ = run_agent(guard, "validate-all", dict(params, timeout="5s"), tmp_path)
    assert rc == OCF_ERR_CONFIGURED and "timeout" in reason, reason
    # A probe of a guard that never started: not running, binary or not.
    rc, _, _ = run_agent(guard, "monitor", dict(params, binary=str(tmp_path / "nope")), tmp_path)
    assert rc == OCF_NOT_RUNNING


def test_guard_drift_refresh_false_refuses_and_leaves_cache(node_b, tmp_path):
    lab, links, _ = node_b
    params = dict(agent_params(lab.b, links), vgname=VG, refresh="false")
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", VG)
    before = sha(lab.b.backup_path(VG))
    rc, reason, _ = run_agent(AGENTS / "guard", "start", params, tmp_path)
    assert rc == OCF_ERR_GENERIC
    assert reason.startswith(f"{VG} drift (seqno): LV lv2 added") and "refresh=false" in reason, reason
    assert sha(lab.b.backup_path(VG)) == before
    assert run_agent(AGENTS / "guard", "monitor", params, tmp_path)[0] == OCF_NOT_RUNNING


def test_guard_drift_refreshes_with_the_nodes_lvm_config(node_b, tmp_path):
    lab, links, _ = node_b
    params = dict(agent_params(lab.b, links), vgname=VG)
    lab.a.lvm("lvcreate", "-L", "4m", "-n", "lv2", VG)
    seqno = lab.a.vgs_truth(VG)["seqno"]
    before = sha(lab.b.backup_path(VG))

    # An LVM config that sees no device: its vgcfgbackup cannot work. The
    # refresh must run with it (LVM_SYSTEM_DIR), not with the host's.
    blind = tmp_path / "lvm-blind"
    blind.mkdir()
    conf = (lab.b.system_dir / "lvm.conf").read_text()
    flt = conf.split("filter = ", 1)[1].split("\n", 1)[0]
    (blind / "lvm.conf").write_text(conf.replace(flt, '[ "r|.*|" ]'))
    rc, reason, _ = run_agent(AGENTS / "guard", "start", dict(params, lvm_system_dir=str(blind)),
                              tmp_path)
    assert rc == OCF_ERR_GENERIC and reason.startswith(f"{VG} "), reason
    assert sha(lab.b.backup_path(VG)) == before

    # With node B's: refreshed, in sync, started; idempotent.
    rc, reason, err = run_agent(AGENTS / "guard", "start", params, tmp_path)
    assert (rc, reason) == (OCF_SUCCESS, None), err
    assert f"seqno = {seqno}\n" in lab.b.read_backup(VG)
    assert run_agent(AGENTS / "guard", "monitor", params, tmp_path)[0] == OCF_SUCCESS
    assert run_agent(AGENTS / "guard", "start", params, tmp_path)[0] == OCF_SUCCESS
    assert run_agent(AGENTS / "guard", "stop", params, tmp_path)[0] == OCF_SUCCESS
    assert run_agent(AGENTS / "guard", "stop", params, tmp_path)[0] == OCF_SUCCESS
    assert run_agent(AGENTS / "guard", "monitor", params, tmp_path)[0] == OCF_NOT_RUNNING


def test_guard_unsafe_and_unknown_refused(node_b, tmp_path):
    lab, links, (_, d2) = node_b
    params = dict(agent_params(lab.b, links), vgname=VG)
    lab.detach(d2, "b")
    sync_links(links, lab, "b")
    before = sha(lab.b.backup_path(VG))
    rc, reason, _ = run_agent(AGENTS / "guard", "start", params, tmp_path)
    assert rc == OCF_ERR_GENERIC
    # Short enough for Pacemaker's 128 characters: the VG, its state, the PV.
    assert reason.startswith(f"{VG} partial (pv_missing): PV {pv_layout(d2.image)['pv_uuid']} "
                             f"missing (cached at /dev/loop"), reason
    assert sha(lab.b.backup_path(VG)) == before
    assert run_agent(AGENTS / "guard", "monitor", params, tmp_path)[0] == OCF_NOT_RUNNING
    # A VG the cache does not hold: the check's answer is unknown (exit 3).
    rc, reason, _ = run_agent(AGENTS / "guard", "start", dict(params, vgname="nosuchvg"), tmp_path)
    assert rc == OCF_ERR_GENERIC and reason.startswith("nosuchvg unknown: "), reason


def test_guard_binary_that_prints_no_json_is_refused(node_b, tmp_path):
    """A check whose JSON does not parse is a refusal, whatever its exit."""
    lab, links, _ = node_b
    fake = tmp_path / "vgdrift-fake"
    fake.write_text("#!/bin/sh\necho 'not json'\nexit 1\n")
    fake.chmod(0o755)
    params = dict(agent_params(lab.b, links), vgname=VG, binary=str(fake))
    before = sha(lab.b.backup_path(VG))
    rc, reason, _ = run_agent(AGENTS / "guard", "start", params, tmp_path)
    assert rc == OCF_ERR_GENERIC and reason.startswith(f"{VG}: ") and "no usable JSON" in reason, reason
    assert sha(lab.b.backup_path(VG)) == before


def fake_check(tmp_path, doc, rc):
    """A stand-in for `vgdrift check` that prints ``doc`` and exits ``rc``:
    what the guard does with actions the real check does not produce."""
    import json
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    fake = tmp_path / "vgdrift-fake"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'doc.json'}\nexit {rc}\n")
    fake.chmod(0o755)
    return str(fake)


def drift_doc(actions):
    return {"version": 1, "exit_code": 1, "errors": [], "warnings": [],
            "vgs": [{"name": VG, "state": "drift", "reason": "seqno", "pvs": [], "changes": [],
                     "actions": [{"command": c, "reason": "test"} for c in actions]}]}


def test_guard_runs_only_refresh_commands_as_words(tmp_path):
    require_cluster()
    blind = tmp_path / "lvm-blind"      # an LVM that sees no device at all
    blind.mkdir()
    (blind / "lvm.conf").write_text('devices { filter = [ "r|.*|" ] global_filter = [ "r|.*|" ] '
                                    'use_devicesfile = 0 }\nbackup { backup = 0 archive = 0 }\n')
    marker = tmp_path / "marker"
    marker.write_text("")
    params = {"vgname": VG, "lvm_system_dir": str(blind), "timeout": "5",
              "cache_dir": str(tmp_path / "cache")}
    # A drift whose only action is not a refresh: refused, not run.
    binary = fake_check(tmp_path, drift_doc([f"rm -f {marker}"]), 1)
    rc, reason, err = run_agent(AGENTS / "guard", "start", dict(params, binary=binary), tmp_path)
    assert rc == OCF_ERR_GENERIC and "drift with no refresh action" in reason, reason
    assert "not a refresh command, not run" in err
    assert marker.exists()
    # A refresh whose VG name carries shell: it reaches vgcfgbackup as one
    # word (which finds no such VG), never the shell.
    binary = fake_check(tmp_path, drift_doc([f"vgcfgbackup {VG};rm${{IFS}}-f${{IFS}}{marker}"]), 1)
    rc, reason, _ = run_agent(AGENTS / "guard", "start", dict(params, binary=binary), tmp_path)
    assert rc == OCF_ERR_GENERIC and "refresh 'vgcfgbackup '" in reason, reason
    assert marker.exists()


# ------------------------------------------------------------------ the health agent

@pytest.mark.parametrize("rc,colour", [(0, "green"), (1, "yellow"), (2, "red"), (3, "yellow"),
                                       (137, "yellow")])
def test_health_colour_of_each_exit(tmp_path, rc, colour):
    """What the health agent hands attrd_updater for each exit of the check
    (a stand-in attrd_updater records it; the real one is exercised on the
    clusters of test_lab_pacemaker*.py). 137: the check was killed."""
    require_cluster()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "attrd.calls"
    attrd = bindir / "attrd_updater"
    attrd.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    attrd.chmod(0o755)
    doc = {"version": 1, "exit_code": rc, "errors": [], "warnings": [],
           "vgs": [{"name": VG, "state": {0: "in_sync", 1: "drift", 2: "partial"}.get(rc, "drift"),
                    "reason": None, "pvs": [], "changes": [], "actions": []}]}
    binary = fake_check(tmp_path, doc, rc)
    params = {"binary": binary, "timeout": "5"}
    path = f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    health = AGENTS / "health"

    def run(action):
        env = {"PATH": path, "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "health:0",
               "HA_RSCTMP": str(tmp_path), "OCF_RESKEY_binary": binary,
               "OCF_RESKEY_timeout": params["timeout"]}
        r = subprocess.run([str(health), action], env=env, capture_output=True, text=True,
                           timeout=60)
        return r.returncode, r.stderr

    assert run("monitor")[0] == OCF_NOT_RUNNING     # a probe before start: nothing set
    assert not calls.exists()
    code, err = run("start")
    assert code == OCF_SUCCESS, err                 # whatever the colour
    assert run("monitor")[0] == OCF_SUCCESS
    assert calls.read_text().splitlines() == [f"-n #health-vgdrift -U {colour}"] * 2
    if colour != "green":
        assert f"#health-vgdrift {colour}: " in err     # what made it so, logged
    assert run("stop")[0] == OCF_SUCCESS
    assert calls.read_text().splitlines()[-1] == "-D -n #health-vgdrift"
    assert run("stop")[0] == OCF_SUCCESS
    assert run("monitor")[0] == OCF_NOT_RUNNING
