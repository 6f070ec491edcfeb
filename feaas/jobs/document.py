"""The job document as the worker reads it (SPEC §3): parsed into a ``PlusScriptJob``, its user and
hostname checked against the task, its limits and inputs checked before anything runs. A document
that fails a check is a recorded FAILED (:class:`JobFailed`), or, before the claim, left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from feaas.dao.batch import RECEIPT_MODES, ReceiptMode
from feaas.dao.codec import CodecError, parse_message, plain
from feaas.errors import JobFailed, JobNotClaimable
from feaas.namespace import job_id_parts, namespace_for
from feaas.text import describe

if TYPE_CHECKING:
    from feaas.objects import PlusScriptJob


def parse_job(job_doc: Mapping[str, Any]) -> PlusScriptJob:
    """The job document as a message; a malformed document is a recorded FAILED."""
    from feaas.objects import PlusScriptJob  # protobuf loads after the claim (issue 14)

    try:
        return parse_message(job_doc, PlusScriptJob())
    except CodecError as exc:
        raise JobFailed(f"invalid job document: {exc}") from None


def input_data(job_doc: Mapping[str, Any]) -> dict[str, Any]:
    """The script's inputs the job was given (``input_data``, a map; absent means none)."""
    values = plain(job_doc.get("input_data") or {})
    if not isinstance(values, dict):
        raise JobFailed("input_data must be a map of script inputs")
    return values


def _names_a_user(job_doc: Mapping[str, Any]) -> bool:
    """Whether the stored job has a ``username`` or an ``owner`` of the form ``{hostname}/{username}/…``."""
    username, owner = job_doc.get("username"), job_doc.get("owner")
    return (isinstance(username, str) and bool(username)) or (
        isinstance(owner, str) and owner.count("/") >= 2
    )


def check_identity_before_claim(read_job: Callable[[], Mapping[str, Any] | None], job_id: str,
                                username: str) -> None:
    """Refuse, before anything is written, a job that names no user outside the task's namespace.

    A job with neither ``username`` nor a parseable ``owner`` belongs to whoever its id names
    (``{hostname}/{username}/job.{uuid}``); a task for another user must not claim it, run it in its
    own namespace, or even record it FAILED (issue 13 §6, SPEC §8.3). A job whose id is in the task's
    namespace passes whatever its document says, so ``read_job`` (the stored document, ``None`` when
    missing) is called only for other ids: the usual job is claimed without a read first (issue 14).
    A missing job passes: the claim reports it. Raises :class:`JobNotClaimable`.
    """
    parts = job_id_parts(job_id)
    if parts is not None and parts[1] == username:
        return
    job_doc = read_job()
    if job_doc is None or _names_a_user(job_doc):
        return
    raise JobNotClaimable(
        f"job {job_id} names no user (neither username nor owner) and its id is not in the namespace of "
        f"{describe(username)}; it was left unchanged"
    )


def job_identity(
    job_doc: Mapping[str, Any], job: PlusScriptJob, username: str, job_id: str
) -> tuple[str, str]:
    """``(hostname, namespace)`` of the job's user; refuses a username mismatch (SPEC §1.1).

    The job's owner (``{hostname}/{username}/job``) names its user too: a task for another user,
    or a ``hostname`` attribute naming another host than the owner, is refused as well. A job that
    names no user at all is identified by its id (:func:`check_identity_before_claim`)."""
    if job.username and job.username != username:
        raise JobFailed(
            f"username mismatch: the job belongs to {describe(job.username)}, "
            f"the task runs for {describe(username)}"
        )
    owner_host, owner_user = "", ""
    origin = f"owner {describe(job.owner)}"
    if job.owner.count("/") >= 2:
        owner_host, owner_user = job.owner.split("/")[:2]
        if owner_user != username:
            raise JobFailed(
                f"username mismatch: the job's owner {describe(job.owner)} belongs to "
                f"{describe(owner_user)}, the task runs for {describe(username)}"
            )
    elif not job.username:
        parts = job_id_parts(job_id)
        if parts is None or parts[1] != username:  # refused before the claim; kept as a second lock
            raise JobFailed(
                f"the job names no user and its id {describe(job_id)} is not in the namespace of "
                f"{describe(username)}"
            )
        owner_host, origin = parts[0], f"id {describe(job_id)}"
    hostname = job_doc.get("hostname") or owner_host
    if not isinstance(hostname, str) or not hostname or "/" in hostname or hostname in (".", ".."):
        raise JobFailed(
            f"the job has no usable hostname (hostname attribute {describe(job_doc.get('hostname'))}, "
            f"{origin})"
        )
    if owner_host and hostname != owner_host:
        raise JobFailed(
            f"hostname mismatch: the job's hostname attribute says {describe(hostname)}, "
            f"its {origin} says {describe(owner_host)}"
        )
    return hostname, namespace_for(hostname, username)


def _number(job_doc: Mapping[str, Any], name: str) -> float | None:
    value = job_doc.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise JobFailed(f"the job's {name} must be a number, got {describe(value)}")
    return number


def receipt_mode(job_doc: Mapping[str, Any], default: ReceiptMode) -> ReceiptMode:
    """The job's ``receipt_mode`` (``transaction`` or ``batch``), else ``default`` (``RECEIPT_MODE``)."""
    value = job_doc.get("receipt_mode")
    if value is None or value == "":
        return default
    for mode in RECEIPT_MODES:
        if value == mode:
            return mode
    raise JobFailed(
        f"the job's receipt_mode must be one of {', '.join(RECEIPT_MODES)}, got {describe(value)}"
    )


def job_limits(job_doc: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The job's own ``timeout_seconds`` and ``tolerated_failure_percent`` (None when absent),
    checked before anything runs: a value that is not a number in range fails the job."""
    timeout = _number(job_doc, "timeout_seconds")
    if timeout is not None and timeout <= 0:
        raise JobFailed(
            f"the job's timeout_seconds must be a positive number of seconds, "
            f"got {describe(job_doc['timeout_seconds'])}"
        )
    tolerated = _number(job_doc, "tolerated_failure_percent")
    if tolerated is not None and not 0 <= tolerated <= 100:
        raise JobFailed(
            f"the job's tolerated_failure_percent must be between 0 and 100, "
            f"got {describe(job_doc['tolerated_failure_percent'])}"
        )
    return timeout, tolerated
