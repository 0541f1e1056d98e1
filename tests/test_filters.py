"""node/filters.py: lvm.conf(5) filters with LVM's own regex grammar.

The semantics table below restates LVM 2.03.16's engine (parse_rx.c,
matcher.c, filter-regex.c); tests/test_lab_node.py checks a set of these
patterns against what real LVM on a lab node sees."""

import os
import pickle
import stat

import pytest

from vgdrift.node import filters as f
from vgdrift.node.filters import PatternError


def matches(pattern, name):
    return f.lvm_regex(pattern).search(f.frame(name)) is not None


@pytest.mark.parametrize("pattern,name,want", [
    ("loop", "/dev/loop3", True),                      # a search, not a full match
    ("^/dev/loop[0-9]+$", "/dev/loop3", True),
    ("^/dev/loop[0-9]+$", "/dev/loop3p1", False),
    ("^loop", "/dev/loop3", False),
    ("/dev/sd[a-c]$", "/dev/sdc", True),
    ("/dev/sd[a-c]$", "/dev/sdd", False),
    ("/dev/sd[^a-c]$", "/dev/sdd", True),
    ("sd[c-a]", "/dev/sdb", True),                     # LVM swaps a reversed range
    ("sd[a-c-e]", "/dev/sde", True),                   # a range's top starts the next one
    ("sd[-x]", "/dev/sd-", True),                      # a leading '-' is literal
    ("a{2}", "/dev/a{2}", True),                       # no {n,m}: braces are literal
    ("a{2}", "/dev/aa", False),
    ("^/dev/\\d$", "/dev/d", True),                    # a backslash quotes any character
    ("^/dev/\\d$", "/dev/1", False),
    ("x|y", "/dev/y", True),
    ("(sd|vd)a", "/dev/vda", True),
    ("sd(a|b)*$", "/dev/sdabab", True),
    ("a**", "/dev/x", True),                           # closures nest; matches the empty string
    ("loop3.", "/dev/loop3", True),                    # '.' matches the end marker
    ("loop3[^x]", "/dev/loop3", True),                 # so does a negated set
    ("loop3\\.", "/dev/loop3", False),
    ("^$", "", True),
    ("(?:x)", "/dev/x", None),                         # LVM cannot parse "(?": error
])
def test_lvm_regex_semantics(pattern, name, want):
    if want is None:
        with pytest.raises(PatternError):
            f.lvm_regex(pattern)
    else:
        assert matches(pattern, name) is want


@pytest.mark.parametrize("pattern", ["", "*a", "a|", "|a", "a||b", "()", "(a", "a)", "a)b(", "[ab",
                                     "a\\", "[a\\", "é"])
def test_patterns_lvm_refuses_or_vgdrift_cannot_reproduce(pattern):
    with pytest.raises(PatternError):
        f.lvm_regex(pattern)


@pytest.mark.parametrize("entry,accept,regex", [
    ("a|loop|", True, "loop"), ("r|loop|", False, "loop"), ("a/x/", True, "x"), ("a(x)", True, "x"),
    ("r[x]", False, "x"), ("a{x}", True, "x"), ("a#x#", True, "x"),
    ("a|x|y|", True, "x|y"),                           # the separator inside is just a character
])
def test_entries(entry, accept, regex):
    p = f.parse_entry(entry)
    assert p.accept is accept and p.text == entry
    assert p.regex.pattern == f.lvm_regex(regex).pattern


@pytest.mark.parametrize("entry", ["x|a|", "a|a", "a|a)", "a|", "a(x(", 7, ["a|x|"], "A|x|"])
def test_bad_entries(entry):
    with pytest.raises(PatternError):
        f.parse_entry(entry)


def flt(key, *entries):
    return f.compile_filter(key, entries)


NONE = f.compile_filter(f.GLOBAL_FILTER, ("a|.*|",))     # LVM's default


def test_first_matching_pattern_decides_per_name():
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, flt(f.FILTER, "r|sdb|", "a|.*|"))
    assert (v.accepted, v.key, v.pattern) == (False, f.FILTER, "r|sdb|")
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, flt(f.FILTER, "a|sdb|", "r|.*|"))
    assert v.accepted is True


def test_any_accepted_name_accepts_the_device():
    names = ["/dev/sdb", "/dev/disk/by-id/wwn-0x5000"]
    v = f.check("/dev/sdb", names, NONE, flt(f.FILTER, "a|by-id|", "r|.*|"))
    assert v.accepted is True


def test_rejected_when_every_matching_name_is_rejected():
    names = ["/dev/sdb", "/dev/disk/by-id/wwn-0x5000"]
    v = f.check("/dev/sdb", names, NONE, flt(f.FILTER, "r|sdb|", "r|wwn|"))
    assert (v.accepted, v.pattern) == (False, "r|sdb|")
    assert "rejected by devices/filter pattern r|sdb|" in v.message


def test_accepted_when_no_name_matches():
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, flt(f.FILTER, "r|nvme|"))
    assert v.accepted is True


def test_global_filter_first():
    v = f.check("/dev/sdb", ["/dev/sdb"], flt(f.GLOBAL_FILTER, "r|sd|"), flt(f.FILTER, "a|sdb|"))
    assert (v.accepted, v.key, v.pattern) == (False, f.GLOBAL_FILTER, "r|sd|")
    v = f.check("/dev/sdb", ["/dev/sdb"], flt(f.GLOBAL_FILTER, "a|sd|"), flt(f.FILTER, "r|sdb|"))
    assert (v.accepted, v.key) == (False, f.FILTER)


def test_a_pattern_vgdrift_cannot_handle_makes_the_verdict_unknown():
    bad = flt(f.FILTER, "a|ok|", "r|a||b|")
    assert bad.problem and "r|a||b|" in bad.problem
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, bad)
    assert v.accepted is None and v.warning == bad.problem
    assert "cannot tell" in v.message
    v = f.check("/dev/sdb", ["/dev/sdb"], flt(f.GLOBAL_FILTER, 1), NONE)
    assert v.accepted is None and "quoted" in v.warning


def test_an_empty_list_is_refused_as_lvm_refuses_it():
    # `filter = [ ]`: LVM says "Empty value not allowed" and builds no
    # filter (checked in the lab); unset is the default ["a|.*|"] instead.
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, flt(f.FILTER))
    assert v.accepted is None and "empty list" in v.warning


def test_empty_names_means_the_device_path():
    v = f.check("/dev/sdb", [], NONE, flt(f.FILTER, "r|^/dev/sdb$|"))
    assert v.accepted is False


def test_verdicts_are_picklable():
    v = f.check("/dev/sdb", ["/dev/sdb"], NONE, flt(f.FILTER, "r|sdb|"))
    assert pickle.loads(pickle.dumps(v)) == v
    assert pickle.loads(pickle.dumps(flt(f.FILTER, "a|x|"))).patterns[0].matches("/dev/x")


# ------------------------------------------------------------ /dev names

@pytest.fixture
def fake_dev(tmp_path):
    """A /dev-like tree: a block node, symlinks to it, a hidden one, a
    symlinked directory (not followed) and a nested one (followed)."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a block device needs root")
    dev = tmp_path / "dev"
    (dev / "disk" / "by-id").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    rdev = os.makedev(7, 250)
    os.mknod(dev / "blk", 0o600 | stat.S_IFBLK, rdev)
    os.mknod(dev / "blk2", 0o600 | stat.S_IFBLK, rdev)            # another node, same device
    os.mknod(dev / "other", 0o600 | stat.S_IFBLK, os.makedev(7, 251))
    os.symlink(dev / "blk", dev / "disk" / "by-id" / "wwn-1")
    os.symlink("../blk", dev / "disk" / "rel")
    os.symlink(dev / "blk", dev / ".hidden")
    os.symlink(dev / "blk", tmp_path / "elsewhere" / "via-dir")
    os.symlink(tmp_path / "elsewhere", dev / "linkdir")
    (dev / "char").write_text("not a block device")
    return dev


def test_alias_index_names(fake_dev):
    idx = f.AliasIndex.build(str(fake_dev))
    names = idx.names(str(fake_dev / "blk"))
    assert names[0] == str(fake_dev / "blk")
    assert sorted(names) == sorted(str(fake_dev / p) for p in ("blk", "blk2", "disk/by-id/wwn-1", "disk/rel"))
    assert idx.names(str(fake_dev / "disk/rel"))[0] == str(fake_dev / "disk/rel")
    assert idx.names(str(fake_dev / "other")) == (str(fake_dev / "other"),)
    assert idx.names("/nonexistent") == ("/nonexistent",)
    assert idx.names(str(fake_dev / "char")) == (str(fake_dev / "char"),)


def test_verdicts_use_every_name(fake_dev):
    idx = f.AliasIndex.build(str(fake_dev))
    blk = str(fake_dev / "blk")
    got = f.verdicts([blk], ["a|.*|"], ["a|wwn-1|", "r|.*|"], idx)
    assert got[blk].accepted is True
    got = f.verdicts([blk], ["a|.*|"], ["r|wwn-1|", "r|blk|", "r|rel|"], idx)
    assert got[blk].accepted is False
    got = f.verdicts([blk], ["a|.*|"], ["r|via-dir|", "r|hidden|"], idx)   # names LVM never sees
    assert got[blk].accepted is True


def test_dev_is_walked_only_when_another_name_can_matter(fake_dev):
    """A device both filters accept by its own path is accepted whatever
    its other names: no walk of /dev (issue 13: a walk costs one stat per
    device node of the host).  Otherwise the walk happens, and the
    verdicts are those of the full index."""
    blk = str(fake_dev / "blk")
    lazy = f.LazyAliasIndex(str(fake_dev))
    assert f.verdicts([blk], ["a|.*|"], ["a|blk$|", "r|.*|"], lazy)[blk].accepted is True
    assert not lazy.built
    full = f.AliasIndex.build(str(fake_dev))
    for flt in (["a|wwn-1|", "r|.*|"], ["r|wwn-1|", "r|blk|", "r|rel|"], ["r|blk|", "a|rel|"], ["r|blk$|"]):
        lazy = f.LazyAliasIndex(str(fake_dev))
        assert f.verdicts([blk], ["a|.*|"], flt, lazy) == f.verdicts([blk], ["a|.*|"], flt, full), flt
        assert lazy.built
    names = f.Names([blk], f.LazyAliasIndex(str(fake_dev)))
    assert not names.index.built and list(names) == [blk]
    assert sorted(names[blk]) == sorted(full.names(blk)) and names.index.built
