"""A job's status, how it is stored, and which transitions are allowed under which guard (SPEC §4).

:data:`ALLOWED_TRANSITIONS` is the one statement of the lifecycle: every claim, heartbeat and
finish writes under the condition :func:`may_become` builds from it, so a write the table does not
allow is refused by DynamoDB itself, atomically.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from feaas.dao.expressions import Condition, any_of, missing, one_of


class JobStatus(str, enum.Enum):
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCEEDED = "SUCCEEDED"


#: How each status may be stored: its name and its ``PlusScriptStatus`` number; a job nobody has
#: claimed yet may also store it empty or as "PENDING", as the upstream project's own launch
#: scripts write it (SPEC §8.1), or not at all.
STORED_AS: dict[JobStatus, tuple[str | int, ...]] = {
    JobStatus.INITIALIZING: ("INITIALIZING", 0, "", "PENDING"),
    JobStatus.RUNNING: ("RUNNING", 1),
    JobStatus.FAILED: ("FAILED", 2),
    JobStatus.SUCCEEDED: ("SUCCEEDED", 3),
}
INITIAL_STATUSES = STORED_AS[JobStatus.INITIALIZING]


class Guard(enum.Enum):
    """What must hold, besides the stored status, for a transition."""

    LEASE_FREE = "nobody holds the lease"
    LEASE_EXPIRED = "the lease ran out: its task crashed"
    RESUMABLE = "an interrupted run left the job resumable"
    OWN_LEASE = "this task holds the lease"
    JOINABLE = "a many-item run nobody holds alone: any number of tasks share its chunks"
    ALL_CHUNKS_DONE = "every chunk of a many-item run's plan is done"


#: status → the statuses it may become, each under any of its guards.
ALLOWED_TRANSITIONS: dict[JobStatus, dict[JobStatus, frozenset[Guard]]] = {
    JobStatus.INITIALIZING: {
        JobStatus.RUNNING: frozenset({Guard.LEASE_FREE}),  # the first claim
        JobStatus.FAILED: frozenset({Guard.LEASE_FREE}),  # ECS refused to start the task (launcher)
    },
    JobStatus.RUNNING: {
        JobStatus.RUNNING: frozenset({Guard.LEASE_EXPIRED,  # a takeover after a crash
                                      Guard.OWN_LEASE,  # a heartbeat
                                      Guard.JOINABLE}),  # another task joins a many-item run
        JobStatus.SUCCEEDED: frozenset({Guard.OWN_LEASE, Guard.ALL_CHUNKS_DONE}),
        JobStatus.FAILED: frozenset({Guard.OWN_LEASE, Guard.ALL_CHUNKS_DONE,
                                     Guard.LEASE_EXPIRED}),  # the sweeper records a dead task's job
    },
    JobStatus.FAILED: {
        JobStatus.RUNNING: frozenset({Guard.RESUMABLE}),  # a relaunch resumes an interrupted run
    },
    JobStatus.SUCCEEDED: {},
}


def stored_as(status: JobStatus) -> Condition:
    """The job's stored status is ``status`` in one of its stored forms."""
    forms = one_of("status", STORED_AS[status])
    return missing("status") | forms if status is JobStatus.INITIALIZING else forms


def may_become(target: JobStatus, guards: Mapping[Guard, Condition]) -> Condition:
    """The condition of a write that moves the job to ``target``: its status is one the table lets
    become ``target``, and that transition's guard holds.

    ``guards`` says what each guard means for this writer (the job's lease, or a shard's) and which
    guards it may use at all: a claim never passes ``OWN_LEASE``, so a claim that botocore retries
    after it landed cannot count an attempt twice.
    """
    options = [stored_as(source) & guards[guard]
               for source, targets in ALLOWED_TRANSITIONS.items()
               for guard in Guard if guard in targets.get(target, frozenset()) and guard in guards]
    if not options:
        raise ValueError(f"no allowed transition to {target.value} under {sorted(g.name for g in guards)}")
    return options[0] if len(options) == 1 else any_of(options)


def status_of(item: Mapping[str, Any]) -> JobStatus:
    """The status as stored: a name, a number, or absent (= INITIALIZING, like "PENDING")."""
    raw = item.get("status")
    if raw is None or (isinstance(raw, str) and raw in INITIAL_STATUSES):
        return JobStatus.INITIALIZING
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        for status, forms in STORED_AS.items():
            if raw in [form for form in forms if isinstance(form, int)]:
                return status
    try:
        return JobStatus(str(raw))
    except ValueError:
        return JobStatus.INITIALIZING if str(raw) == "0" else JobStatus.FAILED


def is_recognised(raw: Any) -> bool:
    """Whether a stored status is one of the forms of :data:`STORED_AS` (or absent)."""
    if raw is None:
        return True
    return any(raw in forms for forms in STORED_AS.values()) or str(raw) in JobStatus.__members__


def is_true(value: Any) -> bool:
    """``request_cancel`` and friends as written by others: bool, number or text."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def outcome_for_counts(
    success: int, error: int, tolerated_percent: float
) -> tuple[JobStatus, str, dict[str, Any]]:
    """Final status of a many-item run from its counts (SPEC §5.3): ``(status, error_message, attrs)``."""
    n = success + error
    if n == 0:
        return JobStatus.SUCCEEDED, "No items found", {}
    if error == 0:
        return JobStatus.SUCCEEDED, "", {}
    message = f"{error} of {n} items failed"
    if error == n or 100.0 * error / n > tolerated_percent:
        return JobStatus.FAILED, message, {}
    return JobStatus.SUCCEEDED, message, {"outcome": "PARTIAL"}
