"""Redrive (issue 17 item 3): a new job over only the items whose latest receipt failed in a
finished run over many items, with the same script, linked both ways (``parent_job_id`` on the new
job, ``redriven_by`` on the old one).

The new job names its items by an explicit key list stored under its own prefix
(``{namespace}.plus-worker/jobs/{uuid}/redrive-keys.json``, referenced by ``item_keys_object``):
a list of any length stays out of the 400 KB document, and collection, stream and files runs
read it the same way (:mod:`feaas.runners.listed`).

Refused with a message and nothing written (:class:`RedriveRefused`): a job not found, another
user's job (the worker's own identity checks), a job still running or interrupted (resume it
instead), a job already redriven, a job that is not a run over many items, a job with no failures.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from feaas.dao import ConditionFailed, Dao, Update
from feaas.dao.expressions import equals, missing, one_of
from feaas.errors import JobFailed, JobNotClaimable, WorkerError
from feaas.jobs.document import check_identity_before_claim, job_identity, parse_job
from feaas.jobs.status import STORED_AS, JobStatus, is_recognised, status_of
from feaas.namespace import job_prefix_for, receipts_stream_for

PARENT_JOB_ID, REDRIVEN_BY = "parent_job_id", "redriven_by"
#: The new job's attribute naming the bucket key of its item key list.
ITEM_KEYS_OBJECT = "item_keys_object"
#: What a run over many items went over, recorded on its job (``job_type`` and the source's attribute).
ITEM_SOURCE = "item_source"
KEYS_FILE = "redrive-keys.json"
#: The attribute naming the items of each kind of run (files runs name theirs by key list only).
SOURCE_ATTRIBUTES = {"run_on_collection": "collection_owner", "run_on_stream": "stream_id",
                     "run_on_files": "prefix"}
_FINISHED = (*STORED_AS[JobStatus.SUCCEEDED], *STORED_AS[JobStatus.FAILED])


class RedriveRefused(WorkerError):
    """A redrive that must not happen; nothing was written."""


def keys_whose_latest_receipt(rows: Iterable[Mapping[str, Any]], *, succeeded: bool) -> dict[str, None]:
    """The item keys whose latest receipt succeeded (or failed), in the order of those receipts
    (rows oldest first, as a stream reads), as an ordered set. Only the matching keys are held, so a
    resumed run's memory is the keys it skips, a redrive's the keys it runs."""
    latest: dict[str, None] = {}  # an ordered set
    for row in rows:
        key = str(row.get("object_id"))
        latest.pop(key, None)
        if bool(row.get("success")) is succeeded:
            latest[key] = None
    return latest


def item_source_of(job_doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the run went over: the ``item_source`` it recorded, else its ``job_type`` and source
    attribute (a job launched with RUN_COLLECTION and no ``job_type`` records only the former)."""
    recorded = job_doc.get(ITEM_SOURCE)
    source = dict(recorded) if isinstance(recorded, Mapping) else {"job_type": job_doc.get("job_type")}
    job_type = source.get("job_type")
    if not isinstance(job_type, str) or job_type not in SOURCE_ATTRIBUTES:
        raise RedriveRefused(f"job {job_doc.get('object_id')} is not a run over many items "
                             "(no item_source or job_type of a collection, stream or files run)")
    attribute = SOURCE_ATTRIBUTES[job_type]
    if attribute not in source and isinstance(job_doc.get(attribute), str):
        source[attribute] = job_doc[attribute]
    return source


@dataclass(frozen=True)
class RedrivePlan:
    job_id: str
    job_doc: dict[str, Any]
    hostname: str
    namespace: str
    source: dict[str, Any]  # job_type and the source's attribute
    failed_keys: list[str]  # in the order of their latest receipts


def plan_redrive(dao: Dao, job_id: str, username: str) -> RedrivePlan:
    """Check that ``job_id`` may be redriven by ``username`` and find its failed items.
    Reads only. Raises :class:`RedriveRefused`."""
    job_doc = dao.docs.get(job_id)
    if job_doc is None:
        raise RedriveRefused(f"job {job_id} not found")
    try:  # the worker's own rules: a task for another user may not run (or redrive) the job
        check_identity_before_claim(lambda: job_doc, job_id, username)
        hostname, namespace = job_identity(job_doc, parse_job(job_doc), username, job_id)
    except (JobFailed, JobNotClaimable) as exc:
        raise RedriveRefused(f"job {job_id} cannot be redriven by {username}: {exc}") from None
    status = status_of(job_doc) if is_recognised(job_doc.get("status")) else None
    if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        shown = status.value if status else repr(job_doc.get("status"))
        raise RedriveRefused(f"job {job_id} has not finished (status {shown}); redrive it once it has")
    if job_doc.get("resumable") is True:
        raise RedriveRefused(f"job {job_id} was interrupted and can be resumed: launch it again with the "
                             "same JOB_ID instead (items not yet run have no receipt to redrive)")
    if job_doc.get(REDRIVEN_BY):
        raise RedriveRefused(f"job {job_id} was already redriven by {job_doc[REDRIVEN_BY]}")
    source = item_source_of(job_doc)
    stream_id = receipts_stream_for(namespace, job_id)
    failed = list(keys_whose_latest_receipt(dao.streams.rows(stream_id), succeeded=False))
    if not failed:
        raise RedriveRefused(f"job {job_id} has no failed items (receipts in {stream_id}): "
                             "nothing to redrive")
    return RedrivePlan(job_id, job_doc, hostname, namespace, source, failed)


def create_redrive(dao: Dao, plan: RedrivePlan, new_job: Mapping[str, Any],
                   key_attribute: str = "object_id") -> str:
    """Write the redrive of ``plan`` as ``new_job`` (a new job document, INITIALIZING): first the
    old job's ``redriven_by`` (conditional: still finished, not redriven, so two redrives cannot
    both happen), then the key list, then the new job. Returns the new job's id.
    Raises :class:`RedriveRefused` when another redrive won the race (nothing written)."""
    new_id = str(new_job[key_attribute])
    not_resumable = missing("resumable") | equals("resumable", False)
    claim = Update(set={REDRIVEN_BY: new_id},
                   condition=missing(REDRIVEN_BY) & one_of("status", _FINISHED) & not_resumable)
    try:
        dao.docs.update(plan.job_id, claim)
    except ConditionFailed as exc:
        other = (exc.old or {}).get(REDRIVEN_BY)
        raise RedriveRefused(f"job {plan.job_id} changed meanwhile"
                             + (f": already redriven by {other}" if other else "")) from None
    keys_object = str(new_job[ITEM_KEYS_OBJECT])
    try:
        payload = {PARENT_JOB_ID: plan.job_id, "job_type": plan.source["job_type"], "keys": plan.failed_keys}
        dao.blobs.put_bytes(keys_object, json.dumps(payload).encode(), "application/json")
        dao.docs.put_new(new_job)
    except BaseException:
        _undo(dao, plan.job_id, new_id)
        raise
    return new_id


def _undo(dao: Dao, job_id: str, new_id: str) -> None:
    """Take back the link of a redrive that could not be written (best effort: the error that
    stopped it is what the caller reports)."""
    with contextlib.suppress(ConditionFailed, WorkerError):
        dao.docs.update(job_id, Update(remove=[REDRIVEN_BY], condition=equals(REDRIVEN_BY, new_id)))


def keys_object_for(namespace: str, new_job_id: str) -> str:
    """The bucket key of a redrive's item key list: under the new job's own prefix."""
    return job_prefix_for(namespace, new_job_id) + KEYS_FILE

