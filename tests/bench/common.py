"""Shared helpers for benchmarks: a private local stack, timing, and the result table."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feaas.dao import Blobs, Dao, Documents, Streams, make_clients
from tests.support import localstack

TABLE, STREAMS_TABLE, BUCKET = "bench-docs", "bench-streams", "bench-bucket"


@contextmanager
def bench_stack() -> Iterator[localstack.LocalStack]:
    """A stack of its own (benchmarks never share servers with tests)."""
    state = Path(tempfile.mkdtemp(prefix="plus-bench-"))
    stack = localstack.start(state)
    os.environ.update(stack.env)
    localstack.create_resources(stack.env, table=TABLE, streams_table=STREAMS_TABLE, bucket=BUCKET)
    try:
        yield stack
    finally:
        localstack.stop(stack)


def make_dao() -> Dao:
    """The benchmark stack's tables and bucket (the environment points at ``bench_stack``)."""
    clients = make_clients(localstack.DEFAULT_REGION)
    return Dao(docs=Documents(clients.dynamodb, TABLE, "object_id", "ownerIndex"),
               streams=Streams(clients.dynamodb, STREAMS_TABLE), blobs=Blobs(clients.s3, BUCKET))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


@dataclass
class Row:
    name: str
    measured: str
    baseline: str
    ratio: float
    target: str
    ok: bool


def print_table(title: str, rows: list[Row]) -> bool:
    print(f"\n{title}")
    header = f"{'benchmark':<44} {'measured':>18} {'baseline':>18} {'ratio':>8}  {'target':<10} result"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:<44} {r.measured:>18} {r.baseline:>18} {r.ratio:>8.3f}  {r.target:<10} "
              f"{'ok' if r.ok else 'MISSED'}")
    sys.stdout.flush()
    return all(r.ok for r in rows)
