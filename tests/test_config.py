import argparse
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vgdrift.serve.config import ConfigError, ServeConfig, load_config, load_file, parse_duration
from vgdrift.serve.main import add_serve_arguments


def args(**kw):
    """A namespace as cli.py produces it: shared flags plus the serve flags."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", action="append")
    parser.add_argument("--devices", action="append")
    parser.add_argument("--vg", action="append")
    parser.add_argument("--timeout", type=float)
    add_serve_arguments(parser)
    ns = parser.parse_args([])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def write(tmp_path, text):
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(text))
    return str(path)


FULL = """\
    cache_dirs: [/etc/lvm/backup, /srv/backup]
    devices: ["/dev/mapper/mpath*"]
    vgs:
      include: [vg0, vg1]
      exclude: [vg_local]
    scan:
      interval: 1m30s
      timeout: 500ms
    web:
      listen_address: "127.0.0.1:9999"
      telemetry_path: /vg-metrics
    log:
      level: warning
      format: json
"""


def test_defaults():
    assert load_config(args()) == ServeConfig()


def test_full_file(tmp_path):
    path = write(tmp_path, FULL)
    assert load_config(args(config_file=path)) == ServeConfig(
        cache_dirs=("/etc/lvm/backup", "/srv/backup"), device_globs=("/dev/mapper/mpath*",),
        vgs=("vg0", "vg1"), exclude_vgs=("vg_local",), interval=90.0, timeout=0.5,
        listen_address="127.0.0.1:9999", telemetry_path="/vg-metrics",
        log_level="warn", log_format="json", config_file=path)


def test_empty_file_means_defaults(tmp_path):
    path = write(tmp_path, "# nothing\n")
    assert load_config(args(config_file=path)) == ServeConfig(config_file=path)


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, FULL)
    ns = args(config_file=path, cache_dir=["/x"], devices=["/dev/sd*"], vg=["vgX"], timeout=3.0)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    parser.parse_args(["--scan.interval=5s", "--web.listen-address=[::1]:1234",
                       "--web.telemetry-path=/m", "--log.level=debug", "--log.format=logfmt",
                       "--web.config.file=web.yml"], namespace=ns)
    config = load_config(ns)
    assert config.cache_dirs == ("/x",) and config.device_globs == ("/dev/sd*",)
    assert config.vgs == ("vgX",) and config.exclude_vgs == ("vg_local",)   # no flag: file value
    assert (config.timeout, config.interval) == (3.0, 5.0)
    assert config.listen_address == "[::1]:1234" and config.telemetry_path == "/m"
    assert (config.log_level, config.log_format) == ("debug", "logfmt")
    assert config.web_config_file == "web.yml"


@pytest.mark.parametrize("flag", [
    "--scan.interval=soon", "--scan.interval=0s", "--web.listen-address=9867",
    "--web.listen-address=::1:9867", "--web.telemetry-path=metrics", "--web.telemetry-path=/",
    "--log.level=trace", "--log.format=xml",
])
def test_bad_flags_are_usage_errors(flag, capsys):
    parser = argparse.ArgumentParser(prog="vgdrift serve")
    add_serve_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([flag])
    assert exc.value.code == 2
    assert flag.split("=")[0] in capsys.readouterr().err


def test_bad_timeout_flag():
    with pytest.raises(ConfigError, match="--timeout"):
        load_config(args(timeout=-1.0))


@pytest.mark.parametrize("text, key", [
    ("colour: blue\n", "colour"),
    ("scan:\n  intervall: 30s\n", "scan.intervall"),
    ("web:\n  config_file: web.yml\n", "web.config_file"),
    ("cache_dirs: /etc/lvm/backup\n", "cache_dirs"),
    ("cache_dirs: []\n", "cache_dirs"),
    ("cache_dirs: [1, 2]\n", "cache_dirs"),
    ("devices: [\"\"]\n", "devices"),
    ("vgs: [vg0]\n", "vgs"),
    ("vgs:\n  include: vg0\n", "vgs.include"),
    ("scan: 30s\n", "scan"),
    ("scan:\n  interval: 30\n  timeout: soon\n", "scan.timeout"),
    ("scan:\n  interval: -5\n", "scan.interval"),
    ("scan:\n  interval: 0s\n", "scan.interval"),
    ("scan:\n  interval: true\n", "scan.interval"),
    ("scan:\n  interval: .inf\n", "scan.interval"),
    ("scan:\n  interval: 30S\n", "scan.interval"),
    ("scan:\n  interval: [30s]\n", "scan.interval"),
    ("web:\n  listen_address: 9867\n", "web.listen_address"),
    ("web:\n  listen_address: \"localhost\"\n", "web.listen_address"),
    ("web:\n  listen_address: \":99999\"\n", "web.listen_address"),
    ("web:\n  telemetry_path: /-/healthy\n", "web.telemetry_path"),
    ("log:\n  level: verbose\n", "log.level"),
    ("log:\n  format: text\n", "log.format"),
])
def test_bad_values_name_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert path in message and key in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "a: [\n", "\tcache_dirs: x\n",
                                  "a: b\n  c: d\n"])
def test_not_a_config_document(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert "\n" not in str(err.value) and path in str(err.value)


def test_unreadable_files(tmp_path):
    for path in (tmp_path / "absent.yml", tmp_path):
        with pytest.raises(ConfigError) as err:
            load_config(args(config_file=str(path)))
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        load_file(str(binary))


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("1m", 60), ("500ms", 0.5), ("1h30m", 5400), ("2d", 172800), ("1w", 604800),
    ("1y", 365 * 86400), ("1m500ms", 60.5), (45, 45), (1.5, 1.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "30", "1.5s", "30 s", "-1s", "1s1m", "0", "0s", 0,
                                  None, True, "1e3s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


UNITS = (("y", 365 * 86400), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1),
         ("ms", 0.001))


@given(st.lists(st.integers(0, 10_000), min_size=len(UNITS), max_size=len(UNITS)))
def test_parse_duration_sums_units(counts):
    text = "".join("%d%s" % (n, unit) for n, (unit, _) in zip(counts, UNITS) if n)
    expected = sum(n * factor for n, (_, factor) in zip(counts, UNITS))
    if not text:
        return
    assert parse_duration(text) == pytest.approx(expected)


def test_lvm_system_dir_from_file_and_flag(tmp_path):
    # Unset: the Scanner takes $LVM_SYSTEM_DIR, else /etc/lvm; the cache
    # directory then defaults to that configuration's backup_dir.
    assert ServeConfig().lvm_system_dir is None and ServeConfig().cache_dirs == ()
    path = write(tmp_path, "lvm_system_dir: /srv/node-b/etc\n")
    assert load_config(args(config_file=path)).lvm_system_dir == "/srv/node-b/etc"
    assert load_config(args(config_file=path, lvm_system_dir="/x")).lvm_system_dir == "/x"
    # "" is LVM's "no configuration files at all", not an error.
    assert load_file(write(tmp_path, 'lvm_system_dir: ""\n')) == {"lvm_system_dir": ""}
    with pytest.raises(ConfigError, match="lvm_system_dir"):
        load_file(write(tmp_path, "lvm_system_dir: [a]\n"))


def test_serve_scan_options_resolve_the_lvm_system_dir(monkeypatch):
    from vgdrift.serve.main import scan_options
    monkeypatch.setenv("LVM_SYSTEM_DIR", "/from/env")
    assert scan_options(ServeConfig()).lvm_system_dir == "/from/env"
    assert scan_options(ServeConfig(lvm_system_dir="/given")).lvm_system_dir == "/given"


def test_discovery_interval_from_file_and_flag(tmp_path):
    assert ServeConfig().discovery_interval == 600.0          # 10m by default
    path = write(tmp_path, "discovery:\n  interval: 0\n")
    assert load_config(args(config_file=path)).discovery_interval == 0.0   # never
    path = write(tmp_path, "discovery:\n  interval: 2m\n")
    assert load_config(args(config_file=path)).discovery_interval == 120.0
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    ns = parser.parse_args(["--discovery.interval=0"], namespace=args(config_file=path))
    assert load_config(ns).discovery_interval == 0.0
    ns = parser.parse_args(["--discovery.interval=30s"], namespace=args())
    assert load_config(ns).discovery_interval == 30.0
    for bad in ("soon", "25h", "-1s", "true"):
        path = write(tmp_path, f"discovery:\n  interval: {bad}\n")
        with pytest.raises(ConfigError, match="discovery.interval"):
            load_config(args(config_file=path))


def test_discovery_interval_reaches_the_scanner(monkeypatch):
    from vgdrift.serve.main import scan_options
    assert scan_options(ServeConfig(discovery_interval=5.0)).discovery_interval == 5.0
    assert scan_options(ServeConfig(discovery_interval=0.0)).discovery_interval == 0.0
