"""node/lvmconf.py: lvm.conf + lvmlocal.conf as LVM reads them.

Expectations come from LVM itself: tests/fixtures/node/manifest.json holds
what `lvmconfig --typeconfig full KEY` printed for each fixture directory
(made by tests/fixtures/node/make_node_fixtures.py)."""

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from vgdrift.node import lvmconf
from vgdrift.node.lvmconf import ConfigError, parse_config

NODE = Path(__file__).resolve().parent / "fixtures" / "node"
MANIFEST = json.loads((NODE / "manifest.json").read_text())
# Debian 12's build default, which the fixtures were made with.
DEBIAN_DEFAULTS = lambda keys: ({"devices/use_devicesfile": 0}, None)  # noqa: E731
CASES = sorted(c for c in MANIFEST["conf"] if c != "bad")


def fixture_dir(case):
    return NODE / "debian12" if case == "debian12" else NODE / "conf" / case


def expectations(case):
    return (MANIFEST["debian12"] if case == "debian12" else MANIFEST["conf"][case])["lvmconfig"]


def remap(path: str) -> str:
    """A path written into a fixture at generation time, now."""
    return path.replace(MANIFEST["made_in"], str(NODE))


def lvm_value(case, key):
    """What LVM uses for `key` in fixture `case`: lvmconfig's printed value
    through LVM's own reading rules, None when lvmconfig printed none."""
    line = expectations(case).get(key)
    if line is None:
        return None
    tree, _ = parse_config(line, "lvmconfig")
    return next(iter(tree.values()))


# ------------------------------------------------------------ system_dir

def test_system_dir_follows_lvm():
    assert lvmconf.system_dir({}) == "/etc/lvm"
    assert lvmconf.system_dir({"LVM_SYSTEM_DIR": "/srv/lvm"}) == "/srv/lvm"
    # LVM: set but empty means "no system directory", not the default.
    assert lvmconf.system_dir({"LVM_SYSTEM_DIR": ""}) == ""


# ------------------------------------------------------------ fixtures vs lvmconfig

@pytest.mark.parametrize("case", CASES + ["debian12"])
def test_fixture_values_equal_lvmconfig(case):
    conf = lvmconf.read(str(fixture_dir(case)), defaults=DEBIAN_DEFAULTS)
    exp = lambda key: lvm_value(case, key)  # noqa: E731

    raw = exp("devices/use_devicesfile")
    want_df = lvmconf._bool(raw)
    assert conf.use_devicesfile == (False if want_df is None else want_df)   # junk -> default 0
    name = exp("devices/devicesfile") or "system.devices"                    # "" -> default
    assert conf.devices_file == f"{fixture_dir(case)}/devices/{name}"
    for key, got in (("devices/filter", conf.filter), ("devices/global_filter", conf.global_filter)):
        assert got == lvmconf._list(exp(key))
    assert conf.system_id_source == exp("global/system_id_source")
    # Two fixtures name absolute paths inside the fixture tree as it was
    # when they were made: compare both sides as they are now.
    assert remap(conf.system_id_file) == remap(exp("global/system_id_file") or "")
    assert remap(conf.etc_dir) == remap(exp("global/etc"))
    assert conf.local_system_id == exp("local/system_id")
    assert conf.extra_system_ids == tuple(exp("local/extra_system_ids") or ())
    for key, got in (("activation/auto_activation_volume_list", conf.auto_activation_volume_list),
                     ("activation/volume_list", conf.volume_list)):
        want = exp(key)
        assert got == (None if want is None else lvmconf._list(want))
    assert conf.backup_dir == remap(exp("backup/backup_dir"))


def test_duplicates_merge_later_value_wins_and_lvmlocal_overrides():
    conf = lvmconf.read(str(NODE / "conf" / "dupes"), defaults=DEBIAN_DEFAULTS)
    assert conf.filter == ("a|^/dev/sd[a-c]$|", "r/.*/")
    assert conf.use_devicesfile is True
    assert conf.global_filter == ("a{^/dev/loop[0-9]+$}", "r(.*)")     # from lvmlocal.conf
    assert conf.source("devices/filter") == "lvm.conf"
    assert conf.source("devices/global_filter") == "lvmlocal.conf"
    assert conf.source("global/system_id_source") == "lvmlocal.conf"
    assert conf.source("devices/use_devicesfile") == "lvm.conf"
    assert conf.files == (str(NODE / "conf/dupes/lvm.conf"), str(NODE / "conf/dupes/lvmlocal.conf"))
    dup = [w for w in conf.warnings if "set twice" in w]
    assert len(dup) == 2 and "lvm.conf:10: filter" in dup[0] and "lvm.conf:13: use_devicesfile" in dup[1]


def test_unset_build_dependent_key_comes_from_lvmconfig():
    conf = lvmconf.read(str(NODE / "debian12"), defaults=lambda keys: ({"devices/use_devicesfile": 1}, None))
    assert conf.use_devicesfile is True            # a RHEL 9 build
    assert conf.source("devices/use_devicesfile") == "lvmconfig default"
    assert conf.source("devices/filter") == "built-in default"


def test_unknown_build_default_is_reported_not_guessed():
    conf = lvmconf.read(str(NODE / "debian12"), defaults=lambda keys: ({}, "lvmconfig not found"))
    assert conf.use_devicesfile is None
    assert conf.source("devices/use_devicesfile") == "unknown"
    assert any("lvmconfig not found" in w for w in conf.warnings)


def test_values_lvm_ignores_fall_back_with_a_warning():
    asked = []
    conf = lvmconf.read(str(NODE / "conf" / "junk"),
                        defaults=lambda keys: (asked.append(keys), ({"devices/use_devicesfile": 0}, None))[1])
    assert asked == [lvmconf.BUILD_DEPENDENT]      # "maybe" is no boolean: the default
    assert conf.use_devicesfile is False
    assert conf.devices_file.endswith("/devices/system.devices")
    assert any("use_devicesfile" in w and "maybe" in w for w in conf.warnings)
    assert any("devicesfile" in w and "''" in w for w in conf.warnings)


@pytest.mark.parametrize("text,want", [
    ("1", True), ("0", False), ("7", True), ('"yes"', True), ('"On"', True), ('"n"', False),
    ('"FALSE"', False), ("[1]", True), ("[0, 1]", False), ('"x"', None), ("1.0", None), ("[ ]", None),
])
def test_boolean_reading_as_lvm(text, want):
    tree, _ = parse_config(f"v = {text}", "t")
    assert lvmconf._bool(tree["v"]) is want


def test_set_but_empty_list_differs_from_unset(tmp_path):
    (tmp_path / "lvm.conf").write_text("activation {\n auto_activation_volume_list = [ ]\n}\n")
    assert lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS).auto_activation_volume_list == ()
    (tmp_path / "lvm.conf").write_text("activation {\n}\n")
    assert lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS).auto_activation_volume_list is None
    (tmp_path / "lvm.conf").write_text('activation {\n auto_activation_volume_list = "vg1"\n}\n')
    assert lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS).auto_activation_volume_list == ("vg1",)


def test_empty_system_dir_reads_no_file():
    conf = lvmconf.read("", DEBIAN_DEFAULTS)
    assert conf.files == ()
    # What LVM itself prints with LVM_SYSTEM_DIR="" (lvmconfig --typeconfig default).
    assert conf.backup_dir == "/backup"
    assert conf.devices_file == "/devices/system.devices"


def test_no_files_all_defaults(tmp_path):
    conf = lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS)
    assert conf.files == ()
    assert conf.system_id_source == "none"
    assert conf.backup_dir == f"{tmp_path}/backup"
    assert conf.filter == conf.global_filter == ("a|.*|",)


def test_tags_section_is_a_warning(tmp_path):
    (tmp_path / "lvm.conf").write_text("tags {\n hosttags = 1\n}\n")
    conf = lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS)
    assert conf.host_tags and any("lvm_<tag>.conf" in w for w in conf.warnings)


# ------------------------------------------------------------ errors

def test_unparseable_lvm_conf_names_file_and_the_line_lvm_names():
    bad = NODE / "conf" / "bad"
    with pytest.raises(ConfigError) as e:
        lvmconf.read(str(bad), DEBIAN_DEFAULTS)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{bad}/lvm.conf:3: ")
    assert "(line 3)" in MANIFEST["conf"]["bad"]["stderr"]      # LVM's own verdict
    assert MANIFEST["conf"]["bad"]["returncode"] != 0


@pytest.mark.parametrize("text,line", [
    ("devices {\n", 2), ("}\n", 1), ("a = \n", 2), ("devices {\n  filter = [ \"x\" \"y\" ]\n}\n", 2),
    ("a = 'unterminated\n", 1),
    ("a { b = 1 }\n}\n", 2), ("x = 99999999999999999999999\n", 1),
])
def test_parse_errors_carry_the_line(tmp_path, text, line):
    (tmp_path / "lvmlocal.conf").write_text(text)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/lvmlocal.conf:{line}: "):
        lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS)


def test_unreadable_file_is_a_config_error(tmp_path):
    (tmp_path / "lvm.conf").mkdir()
    with pytest.raises(ConfigError, match=r"lvm.conf: cannot read"):
        lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS)


def test_nested_duplicate_sections_merge():
    tree, warns = parse_config("a { b { x = 1 } }\na { b { y = 2 } c = 3 }\na { b { x = 4 } }\n", "t")
    assert tree == {"a": {"b": {"x": 4, "y": 2}, "c": 3}}
    assert len(warns) == 1 and warns[0].startswith("t:3: x set twice")


# ------------------------------------------------------------ lvmconfig

class FakeRun:
    def __init__(self, result=None, exc=None):
        self.result, self.exc, self.calls = result, exc, []

    def __call__(self, cmd, **kw):
        self.calls.append((cmd, kw))
        if self.exc:
            raise self.exc
        return self.result


def test_lvmconfig_is_run_without_shell_with_timeout_and_no_config_file():
    run = FakeRun(subprocess.CompletedProcess([], 0, "# use_devicesfile=1\n", ""))
    got = lvmconf.lvmconfig_defaults(lvmconf.BUILD_DEPENDENT, env={"PATH": "/usr/sbin"}, run=run)
    assert got == ({"devices/use_devicesfile": 1}, None)
    (cmd, kw), = run.calls
    assert cmd == ["lvmconfig", "--typeconfig", "default", "devices/use_devicesfile"]
    assert kw["timeout"] > 0 and "shell" not in kw
    assert kw["env"]["LVM_SYSTEM_DIR"] == ""


@pytest.mark.parametrize("run,why", [
    (FakeRun(exc=FileNotFoundError()), "lvmconfig not found"),
    (FakeRun(exc=subprocess.TimeoutExpired("lvmconfig", 10)), "did not answer"),
    (FakeRun(exc=PermissionError(13, "Permission denied")), "cannot run lvmconfig"),
    (FakeRun(subprocess.CompletedProcess([], 5, "", "  Bad thing\n")), "exited 5: Bad thing"),
    (FakeRun(subprocess.CompletedProcess([], 0, "garbage\n", "")), "printed no default"),
])
def test_lvmconfig_failures_leave_the_value_unknown(run, why):
    values, err = lvmconf.lvmconfig_defaults(lvmconf.BUILD_DEPENDENT, run=run)
    assert values == {} and why in err


# ------------------------------------------------------------ the record

def test_nodelvm_is_hashable_and_picklable():
    conf = lvmconf.read(str(NODE / "conf" / "set"), DEBIAN_DEFAULTS)
    assert hash(conf) == hash(pickle.loads(pickle.dumps(conf)))
    assert pickle.loads(pickle.dumps(conf)) == conf


# ------------------------------------------------------------ serve's reuse

def test_config_cache_rereads_only_when_a_file_changes(tmp_path):
    calls = []

    def defaults(keys):
        calls.append(keys)
        return {"devices/use_devicesfile": 0}, None

    conf_path = tmp_path / "lvm.conf"
    conf_path.write_text('global {\n system_id_source = "uname"\n}\n')
    cache = lvmconf.ConfigCache(str(tmp_path), defaults)
    first = cache.get()
    assert cache.get() is first and cache.reads == 1
    # Same size, new mtime: read again.
    conf_path.write_text('global {\n system_id_source = "file"\n}\n'[:len(conf_path.read_text())])
    st = conf_path.stat()
    os.utime(conf_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = cache.get()
    assert cache.reads == 2 and second.system_id_source != first.system_id_source
    # A file that appears: read again.
    (tmp_path / "lvmlocal.conf").write_text('local {\n system_id = "x"\n}\n')
    assert cache.get().local_system_id == "x" and cache.reads == 3
    # Replaced by rename (new inode): read again.
    tmp = tmp_path / "new"
    tmp.write_text('global {\n system_id_source = "none"\n}\n')
    os.replace(tmp, conf_path)
    assert cache.get().system_id_source == "none" and cache.reads == 4
    assert cache.get() is cache.get() and cache.reads == 4
    assert len(calls) == 1                      # the build's default asked once


def test_config_cache_raises_on_a_broken_file_then_recovers(tmp_path):
    conf_path = tmp_path / "lvm.conf"
    conf_path.write_text("devices {\n")
    cache = lvmconf.ConfigCache(str(tmp_path), DEBIAN_DEFAULTS)
    with pytest.raises(ConfigError):
        cache.get()
    with pytest.raises(ConfigError):
        cache.get()
    conf_path.write_text("devices {\n}\n")
    assert cache.get().files == (str(conf_path),)


def test_single_quoted_strings_as_lvm_reads_them():
    conf = lvmconf.read(str(NODE / "conf" / "quotes"), DEBIAN_DEFAULTS)
    assert conf.filter == ("a|x y|", "r|\\.|", 'r|back\\slash "q"|')
    assert conf.source("devices/use_devicesfile") == "lvm.conf"
    assert conf.auto_activation_volume_list == ("vg1", "@t")


@pytest.mark.parametrize("name", ["sub/x.devices", "-x", "..", "a b"])
def test_devices_file_name_lvm_refuses_is_an_error(tmp_path, name):
    (tmp_path / "lvm.conf").write_text(f'devices {{\n use_devicesfile = 1\n devicesfile = "{name}"\n}}\n')
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/lvm.conf: devices/devicesfile"):
        lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS)
    # Not in use: LVM never looks at the name.
    (tmp_path / "lvm.conf").write_text(f'devices {{\n use_devicesfile = 0\n devicesfile = "{name}"\n}}\n')
    assert lvmconf.read(str(tmp_path), DEBIAN_DEFAULTS).use_devicesfile is False
