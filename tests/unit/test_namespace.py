"""Every tenant rule of feaas/namespace.py (SPEC §6): no trick leaves ``{hostname}/{username}/``.

This file is the one list of what is refused: bucket keys and prefixes, document, stream and
collection ids, job records, protected attributes, and the namespace a job id names.
"""

from __future__ import annotations

import pytest

from feaas.errors import NamespaceViolation
from feaas.namespace import (
    check_collection_owner,
    check_object_id,
    check_stream_id,
    check_writable_document,
    is_job_id,
    job_id_parts,
    namespace_for,
    normalise_key,
    protected_attributes,
)
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


@pytest.mark.parametrize("stream_id", [f"{NAMESPACE}s", f"{NAMESPACE}stream-run-all.1234", f"{NAMESPACE}a/b"])
def test_stream_ids_inside(stream_id):
    assert check_stream_id(stream_id, NAMESPACE) == stream_id


@pytest.mark.parametrize("stream_id", [NAMESPACE, f"{NAMESPACE}a//b", f"{NAMESPACE}s\n", "s", None, 7])
def test_stream_ids_that_are_not_plain_ids_inside_are_refused(stream_id):
    with pytest.raises(NamespaceViolation, match="outside your namespace"):
        check_stream_id(stream_id, NAMESPACE)


@pytest.mark.parametrize("owner", [f"{BOB}things", f"{NAMESPACE}../bob@example.com/things",
                                   "plus_example_com/alice@example.comx/things", NAMESPACE,
                                   f"{NAMESPACE}a//b"])
def test_collection_owners_outside_are_refused(owner):
    with pytest.raises(NamespaceViolation, match=r"collection .*outside your namespace"):
        check_collection_owner(owner, NAMESPACE)


def test_collection_owners_inside():
    assert check_collection_owner(f"{NAMESPACE}things", NAMESPACE) == f"{NAMESPACE}things"


def test_dotdot_in_an_id_is_not_a_plain_id():
    with pytest.raises(NamespaceViolation, match=r"not a plain id.*outside your namespace"):
        check_object_id(f"{NAMESPACE}../bob@example.com/notes.1", NAMESPACE)


def test_job_records_are_not_writable_documents():
    assert check_writable_document(f"{NAMESPACE}notes.1", NAMESPACE) == f"{NAMESPACE}notes.1"
    with pytest.raises(NamespaceViolation, match="job record"):
        check_writable_document(f"{NAMESPACE}job.1234", NAMESPACE)
    with pytest.raises(NamespaceViolation, match="outside your namespace"):
        check_writable_document(f"{BOB}notes.1", NAMESPACE)
    assert is_job_id(f"{NAMESPACE}job.1") and not is_job_id(f"{NAMESPACE}jobs/1")


def test_protected_attributes():
    assert protected_attributes(["title", "owner", "", "object_id", "pk", "n"], "pk") == ["owner", "",
                                                                                          "object_id", "pk"]
    assert protected_attributes(["title"], "object_id") == []


@pytest.mark.parametrize("job_id, parts", [
    (f"{NAMESPACE}job.1", ("plus_example_com", "alice@example.com")),
    ("h/u/job.1", ("h", "u")),
    ("h/job.1", None),
    ("/u/job.1", None),
    ("h//job.1", None),
    ("../u/job.1", None),
    ("h/../job.1", None),
    ("job.1", None),
])
def test_the_namespace_a_job_id_names(job_id, parts):
    assert job_id_parts(job_id) == parts


def test_namespace_for():
    assert namespace_for("plus_example_com", "alice@example.com") == NAMESPACE
