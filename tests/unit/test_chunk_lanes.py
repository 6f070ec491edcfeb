"""Receipt lanes of tasks sharing a run (feaas.jobs.chunks.ChunkedJobRecord.receipt_lane): the live
tasks of the job, in the order of their keys, each take every n-th millisecond."""

from __future__ import annotations

from typing import Any, cast

from feaas.dao import Documents
from feaas.jobs.chunks import ChunkedJobRecord

NOW = 1_800_000_000


def record(key: str, tasks: dict[str, Any]) -> ChunkedJobRecord:
    rec = ChunkedJobRecord(cast(Documents, None), "j", lease_seconds=60, clock=lambda: NOW, lease_owner=key)
    rec.doc = {"tasks": tasks}
    return rec


def entry(owner: str, expires: int = NOW + 30) -> dict[str, Any]:
    return {"lease_owner": owner, "lease_expires_at": expires}


def test_each_live_task_has_a_lane_of_its_own() -> None:
    tasks = {k: entry(k) for k in ("c", "a", "b")}
    assert [record(k, tasks).receipt_lane() for k in ("a", "b", "c")] == [(3, 0), (3, 1), (3, 2)]


def test_a_task_whose_lease_ran_out_gives_up_its_lane() -> None:
    tasks = {"a": entry("a", expires=NOW - 1), "b": entry("b"), "c": entry("c")}
    assert [record(k, tasks).receipt_lane() for k in ("b", "c")] == [(2, 0), (2, 1)]
    # its own entry always counts for the task itself (its lease is renewed by its heartbeat)
    assert record("a", tasks).receipt_lane() == (3, 0)


def test_alone_or_not_yet_on_the_job_every_millisecond() -> None:
    assert record("a", {"a": entry("a")}).receipt_lane() == (1, 0)
    assert record("z", {"a": entry("a")}).receipt_lane() == (1, 0)
    assert record("z", {}).receipt_lane() == (1, 0)
