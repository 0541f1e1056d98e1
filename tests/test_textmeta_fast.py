"""The metadata parser's fast path (textmeta._parse_fast) against the
exact parser: on any text, the same tree or the same error.  The fast path
may decline a text (then the exact parser reads it), never answer
differently."""

import glob
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgdrift import textmeta
from vgdrift.textmeta import TextError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# Backups written by LVM2 (tests/fixtures/make_fixtures.py).
CACHE_FILES = sorted(glob.glob(os.path.join(FIXTURES, "*", "cache_*", "*")))


def exact(data, source="<text>"):
    """parse() with the fast path switched off: the tree or the error text."""
    saved = textmeta._parse_fast

    def decline(text):
        raise textmeta._Slow
    textmeta._parse_fast = decline
    try:
        return textmeta.parse(data, source)
    except TextError as e:
        return ("error", str(e))
    finally:
        textmeta._parse_fast = saved


def either(data, source="<text>"):
    try:
        return textmeta.parse(data, source)
    except TextError as e:
        return ("error", str(e))


def test_fixtures_exist():
    assert len(CACHE_FILES) >= 8


@pytest.mark.parametrize("path", CACHE_FILES, ids=lambda p: os.path.relpath(p, FIXTURES))
def test_lvm_written_text_takes_the_fast_path_and_agrees(path):
    with open(path, "rb") as f:
        data = f.read()
    tree = textmeta._parse_fast(data.decode())      # does not decline what LVM writes
    assert tree == exact(data, path)
    assert textmeta.parse_vg(data, path) == textmeta.vg_from_tree(exact(data, path), path)


# Pieces of the grammar and of its damage: escapes, octal, floats, numbers
# out of range, comments inside statements, unterminated strings, quoted
# names, stray punctuation.
PIECES = ["a", "b", "pv0", "key", "=", "{", "}", "[", "]", ",", '"x"', '""', '"a\\"b"', '"a\\\\"', '"\\q"',
          '"', "'", "0", "7", "-1", "+2", "007", "08", "1.5", ".5", "1e5", "12abc",
          "123456789012345678", "1234567890123456789", "99999999999999999999999", "-9223372036854775808",
          "#c\n", "# x = 1\n", " ", "\n", "\t", "\r", "\v", '"multi\nline"', "\0"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.lists(st.sampled_from(["", " ", "\n"]), max_size=40))
def test_fast_path_agrees_with_the_exact_parser(pieces, seps):
    text = "".join(p + (seps[i] if i < len(seps) else " ") for i, p in enumerate(pieces))
    assert either(text) == exact(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_path_agrees_on_damaged_lvm_text(data):
    path = data.draw(st.sampled_from(CACHE_FILES))
    with open(path, "rb") as f:
        text = f.read().decode()
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 8))
    insert = data.draw(st.sampled_from(["", "}", "{", '"', "=", "[", "]", ",", "#", "x", "0", "\\", " "]))
    damaged = text[:at] + insert + text[at + cut:]
    assert either(damaged, path) == exact(damaged, path)


@pytest.mark.parametrize("text", [
    'a = "x"\na = "y"\n',             # duplicate key
    "a { b = 1 }\na { }\n",            # duplicate section
    "a = 010\n",                       # octal
    "a = 1.25\n",                      # float
    "a = [1, 2,]\n",                   # trailing comma
    "a = [,]\n",
    "a = [1 2]\n",
    'a = ["x" # c\n]\n',
    "a # c\n= 1\n",
    '"q" = 1\n',                       # quoted name
    "a = 99999999999999999999\n",      # out of range
    "}\n",
    "a {\n",
    "a = 1}\n",
    'a = "x\\\\"\n',
    'a = ["x\\"y", "z"]\n',
    "a = 1.\n",
    "a = -0\n",
    "",
    "   \n# only a comment",
])
def test_fast_path_agrees_on_edges(text):
    assert either(text) == exact(text)


def test_deep_nesting_is_refused_by_both():
    text = "a { " * (textmeta.MAX_DEPTH + 2) + "}" * (textmeta.MAX_DEPTH + 2)
    assert either(text) == exact(text)
    assert either(text)[0] == "error"
