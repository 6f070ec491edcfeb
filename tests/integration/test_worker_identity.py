"""A job that names no user runs only in its own id's namespace (issue 13 §6, SPEC §8.3).

Through ``python -m src.worker`` on the local stack: a document with neither ``username`` nor a
parseable ``owner`` is identified by ``JOB_ID`` (``{hostname}/{username}/job.{uuid}``). A task for
another user refuses it with exit 3 and leaves the stored item exactly as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TABLE
from tests.support.scripts import USERNAME, add_and_nap_script, job_item


def _nameless(owner_user: str, **changes: Any) -> dict[str, Any]:
    """A plus-engine job document for ``owner_user`` from which the user's name was dropped."""
    item = job_item(add_and_nap_script(0), username=owner_user, input_data={"a": 1, "b": 2})
    del item["username"], item["owner"]
    item.update(changes)
    return item


def _raw(stack: Any, job_id: str) -> dict[str, Any]:
    """The stored item in DynamoDB's own attribute-value form (what "unchanged" is checked on)."""
    resp = stack.client("dynamodb").get_item(TableName=TABLE, Key={"object_id": {"S": job_id}},
                                             ConsistentRead=True)
    return dict(resp["Item"])


def test_a_nameless_job_in_the_tasks_namespace_runs(put_job, run_worker):
    # Given a job without username or owner whose id is in alice's namespace
    job_id = put_job(_nameless(USERNAME))
    assert job_id.startswith(f"plus_example_com/{USERNAME}/job.")
    # When alice's task runs it
    run = run_worker(job_id)
    # Then it runs to the end in her namespace
    assert run.code == 0, run.stdout + run.stderr
    assert run.job["status"] == "SUCCEEDED" and run.job["output"]["sum"]["ival"] == "3"


def test_a_nameless_job_without_hostname_takes_it_from_its_id(put_job, run_worker):
    item = _nameless(USERNAME)
    del item["hostname"]
    run = run_worker(put_job(item))
    assert run.code == 0, run.stdout + run.stderr
    assert run.job["status"] == "SUCCEEDED"


@pytest.mark.parametrize("changes", [{}, {"owner": "job"}, {"username": ""}], ids=["no-fields", "bare-owner",
                                                                                   "empty-username"])
@pytest.mark.parametrize("shards", ["1", "2"])
def test_a_nameless_job_of_another_user_is_refused_and_untouched(put_job, run_worker, stack, changes, shards):
    # Given a job without a usable username or owner whose id is in bob's namespace
    job_id = put_job(_nameless("bob@example.com", **changes))
    before = _raw(stack, job_id)
    # When alice's task is started on it (also as a shard of a many-item run)
    run = run_worker(job_id, SHARD_COUNT=shards, SHARD_INDEX="0")
    # Then it is not claimable (exit 3), says why, and the stored document is exactly as it was
    assert run.code == 3, run.stdout + run.stderr
    refused = run.events("job_not_claimable")
    assert refused and "names no user" in refused[0]["reason"] and "left unchanged" in refused[0]["reason"]
    assert _raw(stack, job_id) == before
    assert not run.events("job_claimed") and not run.events("node_started")
