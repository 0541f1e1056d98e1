"""Rendering: the JSON document's stable shape and the human table."""

import json

from samples import all_states_result, vg_report
from vgdrift import model
from vgdrift.report import render_json, render_text, to_json

VG_KEYS = {"name", "uuid", "state", "reason", "cache", "disk", "pvs", "changes", "actions",
           "blockers", "owner", "autoactivation", "duration_seconds"}


def test_json_schema_version_1():
    result = all_states_result()
    doc = json.loads(render_json(result))
    assert {"version", "host", "duration_seconds", "exit_code", "vgs", "errors"} <= set(doc)
    assert doc["version"] == 1 and doc["exit_code"] == result.exit_code == 3   # one VG is unknown
    for vg in doc["vgs"]:
        assert set(vg) == VG_KEYS
        assert set(vg["cache"]) == {"path", "seqno", "mtime", "host", "description"}
        assert vg["disk"] is None or {"seqno", "mtime", "host"} <= set(vg["disk"])
        for pv in vg["pvs"]:
            assert {"uuid", "device", "hint", "state", "seqno"} <= set(pv)
    missing = next(vg for vg in doc["vgs"] if vg["state"] == "missing")
    assert missing["disk"] is None
    assert missing["owner"] is None and missing["autoactivation"] is None and missing["blockers"] == []


def test_readiness_in_json_and_text():
    doc = to_json(all_states_result())
    assert doc["lvm"] == {"system_dir": "/etc/lvm", "use_devicesfile": True,
                          "devices_file": "/etc/lvm/devices/system.devices",
                          "system_id_source": "lvmlocal", "local_system_id": "nodeb"}
    blocked = next(vg for vg in doc["vgs"] if vg["state"] == "blocked")
    assert blocked["reason"] == "devices_file"
    assert blocked["blockers"] == [{"reason": "devices_file", "pv": "pv0-vg_blocked", "device": "/dev/sda",
                                    "message": "not listed in the devices file"}]
    conflict = next(vg for vg in doc["vgs"] if vg["state"] == "conflict")
    assert conflict["owner"] == {"system_id": "nodea", "local_system_id": "nodeb", "this_node": False}
    assert [vg["autoactivation"] for vg in doc["vgs"] if vg["state"] == "drift"] == [True]
    assert "blocked: devices_file: not listed in the devices file" in render_text(all_states_result())
    # Not consulted (library use): null, not a guess.
    assert to_json(all_states_result(lvm=None))["lvm"] is None


def test_changes_and_actions_in_both_formats():
    vg = vg_report(model.DRIFT, "vg0")._replace(
        changes=(model.Change("lv_added", "LV lv2 added (4.00 MiB)", id="L1", name="lv2", new=4194304),),
        actions=(model.Action("vgcfgbackup vg0", "refresh this node's cached metadata"),
                 model.Action(None, "advice only")))
    result = all_states_result(vgs=(vg,))
    doc = to_json(result)
    assert doc["vgs"][0]["changes"] == [{"type": "lv_added", "id": "L1", "name": "lv2", "old": None,
                                         "new": 4194304, "message": "LV lv2 added (4.00 MiB)"}]
    assert doc["vgs"][0]["actions"] == [{"command": "vgcfgbackup vg0",
                                         "reason": "refresh this node's cached metadata"},
                                        {"command": None, "reason": "advice only"}]
    text = render_text(result)
    assert "vg0  drift" in text
    assert "changed: LV lv2 added (4.00 MiB)" in text
    assert "run:     vgcfgbackup vg0    # refresh" in text and "note:    advice only" in text


def test_in_sync_vgs_get_no_explanation_and_no_vgs_says_so():
    text = render_text(all_states_result(vgs=(vg_report(model.IN_SYNC, "vg0"),), unknown_vgs=()))
    assert text.splitlines()[1].startswith("vg0") and len(text.splitlines()) == 2
    assert render_text(all_states_result(vgs=(), errors=(), unknown_vgs=())) == \
        "no cached VGs: nothing to check\n"


def test_unknown_vgs_have_their_own_section_and_raise_the_exit_code():
    result = all_states_result(vgs=(vg_report(model.IN_SYNC, "vg0"),), errors=())
    text = render_text(result)
    assert "VGs on this node's disks that no cache file describes (1)" in text
    assert "vg_new  UUID-vg_new  3" in text and "run:     vgcfgbackup vg_new    # cache it" in text
    assert result.exit_code == 1
    # Even with no cached VG at all, the section is shown (not "nothing to check").
    alone = all_states_result(vgs=(), errors=())
    assert "no cached VGs" not in render_text(alone) and alone.exit_code == 1
    blocked = all_states_result(vgs=(), errors=(), unknown_vgs=(model.UnknownVG(
        "vg_new", "U", 3, 0, "nodea", "", (), (), (model.Blocker("filter", "pv", "/dev/sdq", "rejected"),)),))
    assert blocked.exit_code == 2 and "blocked: filter: rejected" in render_text(blocked)
    import json

    from vgdrift.report import render_json
    doc = json.loads(render_json(result))
    (u,) = doc["unknown_vgs"]
    assert set(u) == {"name", "uuid", "seqno", "mtime", "host", "system_id", "pvs", "blockers", "actions"}
    assert u["pvs"] == [{"uuid": "pv0-vg_new", "device": "/dev/sdq"}] and doc["discovered"] == result.discovered


def test_every_state_is_explained_in_the_text():
    """A state added to the model and not to the text report fails here, not
    as a KeyError (exit 1) in a failover script."""
    from vgdrift import report
    assert set(report._EXPLAIN) == set(model.VGState)
    for state in model.VGState:
        text = render_text(model.CheckResult("h", 0.0, 0.0, (vg_report(state, "vg0"),)))
        assert f"vg0: {state.value}:" in text or state == model.IN_SYNC


def test_readme_state_table_lists_every_state_with_its_exit_code():
    """The README's state table is checked against the model, as the alert
    rules, runbook and dashboard are."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| .* \| (\d) \|$", readme, re.M))
    assert {s: int(rows[s]) for s in rows if s in set(model.VG_STATES)} == \
        {s.value: int(model.STATE_EXIT[s]) for s in model.VGState}
