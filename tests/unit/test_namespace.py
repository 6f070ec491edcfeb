"""Namespace checks for keys and document ids (SPEC §6): no trick leaves ``{hostname}/{username}/``."""

from __future__ import annotations

import pytest

from feaas.actions.context import check_object_id, normalise_key
from feaas.errors import NamespaceViolation
from feaas.runners.common import check_stream_id
from tests.support.scripts import NAMESPACE

BOB = "plus_example_com/bob@example.com/"


@pytest.mark.parametrize("key, expected", [
    (f"{NAMESPACE}a.txt", f"{NAMESPACE}a.txt"),
    (f"{NAMESPACE}dir/../b.txt", f"{NAMESPACE}b.txt"),
    (f"{NAMESPACE}./c//d.txt", f"{NAMESPACE}c/d.txt"),
    (f"/{NAMESPACE}e.txt", f"{NAMESPACE}e.txt"),
    (f"//{NAMESPACE}f.txt", f"{NAMESPACE}f.txt"),
    (f"{NAMESPACE}a..b/x", f"{NAMESPACE}a..b/x"),
    (f"../{NAMESPACE}g.txt", f"{NAMESPACE}g.txt"),  # ".." above the root stays at the root
])
def test_keys_inside_are_normalised(key, expected):
    assert normalise_key(key, NAMESPACE) == expected


@pytest.mark.parametrize("key", [
    f"{BOB}secret.txt",
    f"{NAMESPACE}../bob@example.com/secret.txt",
    f"{NAMESPACE}x/../../bob@example.com/secret.txt",
    f"{NAMESPACE}../../other_host/alice@example.com/x",
    f"{NAMESPACE}..",
    "plus_example_com/alice@example.comx/file",
    "plus_example_com/alice@example.com.evil/file",
    "plus_example_com/alice@example.com",
    NAMESPACE,
    f"{NAMESPACE}.",
    "secret.txt",
    "",
    "   ",
    f"{NAMESPACE}a\nb",
    f"{NAMESPACE}a\x00b",
    None,
    42,
])
def test_key_attacks_are_refused(key):
    with pytest.raises(NamespaceViolation):
        normalise_key(key, NAMESPACE)


def test_refusal_says_outside_your_namespace():
    with pytest.raises(NamespaceViolation, match="outside your namespace"):
        normalise_key(f"{BOB}x", NAMESPACE)


@pytest.mark.parametrize("prefix, expected", [
    (NAMESPACE, NAMESPACE),
    (NAMESPACE.rstrip("/"), NAMESPACE),
    (f"{NAMESPACE}in/", f"{NAMESPACE}in/"),
    (f"{NAMESPACE}in/../", NAMESPACE),
])
def test_prefixes_may_be_the_namespace_itself(prefix, expected):
    assert normalise_key(prefix, NAMESPACE, prefix=True) == expected


@pytest.mark.parametrize("prefix", [BOB, "plus_example_com/", "plus_example_com/alice@example.comx/",
                                    f"{NAMESPACE}../", "/"])
def test_prefixes_outside_are_refused(prefix):
    with pytest.raises(NamespaceViolation):
        normalise_key(prefix, NAMESPACE, prefix=True)


@pytest.mark.parametrize("object_id", [f"{NAMESPACE}notes.1", f"{NAMESPACE}job.abc", f"{NAMESPACE}a/b.c"])
def test_object_ids_inside(object_id):
    assert check_object_id(object_id, NAMESPACE) == object_id


@pytest.mark.parametrize("object_id", [
    f"{BOB}notes.1",
    "plus_example_com/alice@example.comx/notes.1",
    f"/{NAMESPACE}notes.1",
    f"{NAMESPACE}../bob@example.com/notes.1",
    f"{NAMESPACE}a//b",
    f"{NAMESPACE}x\n",
    NAMESPACE,
    "notes.1",
    None,
    ["x"],
])
def test_object_id_attacks_are_refused(object_id):
    with pytest.raises(NamespaceViolation):
        check_object_id(object_id, NAMESPACE)


@pytest.mark.parametrize("stream_id", [f"{BOB}s", "plus_example_com/alice@example.comx/s",
                                       f"{NAMESPACE}../bob@example.com/s"])
def test_stream_ids_outside_are_refused(stream_id):
    with pytest.raises(NamespaceViolation, match="outside your namespace"):
        check_stream_id(stream_id, NAMESPACE)
