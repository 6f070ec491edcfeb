"""Checks on job documents and values that the hostile-input catalogue relies on (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from feaas.dao import Update
from feaas.dao.expressions import below, equals, missing
from feaas.errors import JobFailed, JobNotClaimable
from feaas.jobs import ALLOWED_TRANSITIONS, Guard, JobStatus, status_of
from feaas.jobs.document import check_identity_before_claim, job_identity, job_limits, parse_job
from feaas.jobs.status import may_become
from feaas.objects import ParameterType as PT
from feaas.psee.values import MAX_DEPTH, ConversionError, convert, parse_json_text, too_deep
from feaas.text import bounded

OWNER = "plus_example_com/alice@example.com/job"
JOB_ID = f"{OWNER}.0b7c9a52-6f0e-4d55-9d8f-1c2a3b4c5d6e"


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_limit_counts_levels_of_lists_and_maps():
    assert not too_deep(nested(MAX_DEPTH)) and too_deep(nested(MAX_DEPTH + 1))
    assert too_deep({"a": [{"b": [[1]]}]}, limit=4) and not too_deep({"a": [{"b": [1]}]}, limit=4)
    assert not too_deep("[[[[" * 1000)  # text is not nesting


def test_json_text_too_deep_is_a_value_error_never_a_recursion_error():
    for text in ("[" * 100_000 + "]" * 100_000, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)):
        with pytest.raises(ValueError, match="nested too deeply"):
            parse_json_text(text)
    with pytest.raises(ConversionError, match="nested too deeply"):
        convert("{\"a\": " * 5000 + "1" + "}" * 5000, PT.JSON)
    assert parse_json_text("[" * MAX_DEPTH + "]" * MAX_DEPTH) == nested(MAX_DEPTH)


@pytest.mark.parametrize("item, says", [
    ({"timeout_seconds": "soon"}, "timeout_seconds must be a number, got 'soon'"),
    ({"timeout_seconds": -5}, "timeout_seconds must be a positive number"),
    ({"timeout_seconds": True}, "timeout_seconds must be a number"),
    ({"timeout_seconds": {"s": 1}}, "timeout_seconds must be a number"),
    ({"tolerated_failure_percent": "lots"}, "tolerated_failure_percent must be a number"),
    ({"tolerated_failure_percent": 150}, "tolerated_failure_percent must be between 0 and 100"),
    ({"tolerated_failure_percent": float("nan")}, "tolerated_failure_percent must be a number"),
])
def test_bad_job_limits_fail_the_job(item, says):
    with pytest.raises(JobFailed, match=says):
        job_limits(item)


def test_job_limits_accept_numbers_and_text_numbers():
    assert job_limits({}) == (None, None)
    assert job_limits({"timeout_seconds": "30", "tolerated_failure_percent": 12.5}) == (30.0, 12.5)


def test_owner_and_hostname_must_agree_with_the_task():
    job = parse_job({"owner": OWNER})  # no username field: the owner names the user
    assert job_identity({"hostname": "plus_example_com"}, job, "alice@example.com", JOB_ID) == (
        "plus_example_com", "plus_example_com/alice@example.com/")
    with pytest.raises(JobFailed, match="username mismatch"):
        job_identity({}, job, "bob@example.com", JOB_ID)
    with pytest.raises(JobFailed, match="hostname mismatch"):
        job_identity({"hostname": "evil_example_net"}, job, "alice@example.com", JOB_ID)


@pytest.mark.parametrize("item", [
    {"username": "alice@example.com"},
    {"owner": OWNER},
    {"username": "bob@example.com"},  # a mismatch is recorded FAILED after the claim, not refused here
    {"owner": "plus_example_com/bob@example.com/job"},
    None,  # not found: the claim says so
])
def test_a_job_naming_a_user_passes_the_pre_claim_check(item):
    check_identity_before_claim(lambda: item, "plus_example_com/bob@example.com/job.1", "alice@example.com")


@pytest.mark.parametrize("item", [{}, {"username": ""}, {"owner": "job"}, {"owner": "x/y"}, {"username": 7},
                                  {"hostname": "plus_example_com"}])
def test_a_job_naming_no_user_runs_only_in_its_ids_namespace(item):
    check_identity_before_claim(lambda: item, JOB_ID, "alice@example.com")
    for job_id in ("plus_example_com/bob@example.com/job.1", "job.1", "plus_example_com/job.1",
                   "/alice@example.com/j"):
        with pytest.raises(JobNotClaimable, match=r"names no user .* left unchanged"):
            check_identity_before_claim(lambda: item, job_id, "alice@example.com")


def test_a_job_in_the_tasks_namespace_is_claimed_without_reading_it_first():
    def never_read() -> dict[str, Any]:
        raise AssertionError("the job was read")

    check_identity_before_claim(never_read, JOB_ID, "alice@example.com")
    with pytest.raises(AssertionError):
        check_identity_before_claim(never_read, "plus_example_com/bob@example.com/job.1", "alice@example.com")


def test_a_job_naming_no_user_takes_its_hostname_from_its_id():
    job = parse_job({})
    assert job_identity({}, job, "alice@example.com", JOB_ID) == (
        "plus_example_com", "plus_example_com/alice@example.com/")
    with pytest.raises(JobFailed, match="hostname mismatch"):
        job_identity({"hostname": "evil_example_net"}, job, "alice@example.com", JOB_ID)
    with pytest.raises(JobFailed, match="names no user"):
        job_identity({"hostname": "plus_example_com"}, job, "alice@example.com", "plus_example_com/bob/job.1")


def test_messages_are_bounded():
    assert bounded("short") == "short"
    long = bounded("x" * 100_000)
    assert len(long) < 2100 and long.endswith("(98000 more characters)")


@pytest.mark.parametrize("raw", [None, "", "INITIALIZING", 0, "PENDING"])
def test_initial_statuses_including_upstream_pending_count_as_initializing(raw):
    assert status_of({} if raw is None else {"status": raw}) is JobStatus.INITIALIZING


def test_an_upstream_pending_document_parses_once_claimed():
    # the claim replaces "PENDING"; the rest (ms timestamps, explicit defaults) parses as it is
    job = parse_job({"object_id": f"{OWNER}.1", "owner": OWNER, "status": "RUNNING",
                     "created_at": 1764633600123,
                     "updated_at": "1764633600123", "request_cancel": False, "error_message": ""})
    assert job.created_at == 1764633600123 and not job.request_cancel and job.error_message == ""


def rendered(condition) -> str:
    """A condition as DynamoDB gets it, with every placeholder replaced by its name or value."""
    update = Update(condition=condition)
    text = update.condition_expression() or ""
    for placeholder in sorted([*update.names, *update.values], key=len, reverse=True):
        text = text.replace(placeholder, update.names[placeholder] if placeholder in update.names
                            else repr(update.values[placeholder]))
    return text


def test_a_claim_may_take_a_new_job_a_crashed_task_s_job_or_an_interrupted_one_and_nothing_else():
    guards = {Guard.LEASE_FREE: missing("lease_owner"), Guard.LEASE_EXPIRED: below("lease_expires_at", 100),
              Guard.RESUMABLE: equals("resumable", True)}
    assert rendered(may_become(JobStatus.RUNNING, guards)) == (
        "(((attribute_not_exists(status)) OR (status IN ('INITIALIZING', 0, '', 'PENDING'))) "
        "AND (attribute_not_exists(lease_owner))) "
        "OR ((status IN ('RUNNING', 1)) AND (lease_expires_at < 100)) "
        "OR ((status IN ('FAILED', 2)) AND (resumable = True))")


def test_only_the_lease_holder_finishes_and_a_finished_job_never_changes():
    own = {Guard.OWN_LEASE: equals("lease_owner", "me")}
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert rendered(may_become(status, own)) == "(status IN ('RUNNING', 1)) AND (lease_owner = 'me')"
    assert ALLOWED_TRANSITIONS[JobStatus.SUCCEEDED] == {}
    assert all(JobStatus.INITIALIZING not in targets for targets in ALLOWED_TRANSITIONS.values())
    with pytest.raises(ValueError, match="no allowed transition to INITIALIZING"):
        may_become(JobStatus.INITIALIZING, own)
    with pytest.raises(ValueError):  # a guard no transition into SUCCEEDED has
        may_become(JobStatus.SUCCEEDED, {Guard.RESUMABLE: equals("resumable", True)})
