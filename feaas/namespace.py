"""Every tenant rule in one place (SPEC §6): what a user's bucket keys, prefixes, document ids,
stream ids and collection owners may be, and which attributes no write may change.

A user's namespace is ``{hostname}/{username}/``. Anything outside it raises
:class:`NamespaceViolation` with "… is outside your namespace …" in its message.
``tests/unit/test_namespace.py`` is the one list of what is refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from feaas.errors import NamespaceViolation

#: What marks a job document's id (``{hostname}/{username}/job.{uuid}``): never an item, never
#: changed by an action.
JOB_MARKER = "/job."
#: Attributes no action or write-back may set, besides the table's key attribute.
PROTECTED_ATTRIBUTES = ("object_id", "owner")


def namespace_for(hostname: str, username: str) -> str:
    """The namespace of ``username`` on ``hostname``: ``{hostname}/{username}/``."""
    return f"{hostname}/{username}/"


def job_id_parts(job_id: str) -> tuple[str, str] | None:
    """``(hostname, username)`` a job id ``{hostname}/{username}/job.{uuid}`` names, or ``None``."""
    parts = job_id.split("/")
    if len(parts) < 3 or not parts[0] or not parts[1] or parts[0] in (".", "..") or parts[1] in (".", ".."):
        return None
    return parts[0], parts[1]


def job_uuid_of(job_id: str) -> str:
    """The part of a job id after ``job.``, usable in a key or stream id (``/`` replaced)."""
    return job_id.rsplit("job.", 1)[-1].replace("/", "_") or "job"


def job_prefix_for(namespace: str, job_id: str) -> str:
    """Where a job's own objects go (large values and outputs, a redrive's item keys)."""
    return f"{namespace}.plus-worker/jobs/{job_uuid_of(job_id)}/"


def receipts_stream_for(namespace: str, job_id: str) -> str:
    """The stream of a run's item receipts (SPEC §2): ``{namespace}stream-run-all.{job uuid}``."""
    return f"{namespace}stream-run-all.{job_uuid_of(job_id)}"


def is_job_id(object_id: str) -> bool:
    """Whether ``object_id`` names a job document."""
    return JOB_MARKER in object_id


def _has_control_characters(text: str) -> bool:
    return any(ord(ch) < 32 for ch in text)


def normalise_key(key: Any, namespace: str, *, prefix: bool = False) -> str:
    """The bucket key (or, with ``prefix``, key prefix) as it will be used, or
    :class:`NamespaceViolation` when it leaves ``namespace``.

    ``..``, ``.``, repeated and leading slashes are resolved first, so they cannot escape. A key
    must name something below the namespace; a prefix may be the namespace itself.
    """
    if not isinstance(key, str) or not key.strip():
        raise NamespaceViolation(f"key {key!r} is empty or not text")
    if _has_control_characters(key):
        raise NamespaceViolation(f"key {key!r} contains control characters")
    cleaned = posixpath.normpath("/" + key).lstrip("/")
    if prefix and (key.endswith("/") or cleaned + "/" == namespace):
        cleaned += "/"
    inside = cleaned.startswith(namespace) and (prefix or len(cleaned) > len(namespace))
    if not inside:
        raise NamespaceViolation(f"key {key!r} is outside your namespace {namespace!r}")
    return cleaned


def check_id(what: str, value: Any, namespace: str) -> str:
    """``value`` when it is an id of a ``what`` (document, stream, collection) inside ``namespace``.

    Ids are used as they are (a table key, never normalised), so an id must start with the
    namespace, name something below it, and be plain: no ``..`` segment, no ``//``, no control
    characters. Raises :class:`NamespaceViolation`.
    """
    if not isinstance(value, str) or not value.startswith(namespace) or len(value) == len(namespace):
        raise NamespaceViolation(f"{what} {value!r} is outside your namespace {namespace!r}")
    if ".." in value.split("/") or "//" in value or _has_control_characters(value):
        raise NamespaceViolation(
            f"{what} id {value!r} is not a plain id ('..', '//' or control characters): "
            f"treated as outside your namespace {namespace!r}"
        )
    return value


def check_object_id(object_id: Any, namespace: str) -> str:
    """A document id inside ``namespace`` (:func:`check_id`)."""
    return check_id("document", object_id, namespace)


def check_stream_id(stream_id: Any, namespace: str) -> str:
    """A stream id inside ``namespace`` (:func:`check_id`)."""
    return check_id("stream", stream_id, namespace)


def check_collection_owner(owner: Any, namespace: str) -> str:
    """A collection's owner inside ``namespace`` (:func:`check_id`)."""
    return check_id("collection", owner, namespace)


def check_writable_document(object_id: Any, namespace: str) -> str:
    """A document an action may change: inside ``namespace`` and not a job record."""
    check_object_id(object_id, namespace)
    if is_job_id(object_id):
        raise NamespaceViolation(f"document {object_id!r} is a job record; actions cannot change jobs")
    return str(object_id)


def protected_attributes(names: Iterable[str], key_attribute: str) -> list[str]:
    """The names among ``names`` that no write may set: the key attribute, ``object_id``,
    ``owner`` and the empty name, in the order given."""
    protected = {key_attribute, *PROTECTED_ATTRIBUTES}
    return [name for name in names if name in protected or not name]
