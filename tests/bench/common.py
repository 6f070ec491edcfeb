"""Shared helpers for benchmarks: a private local stack, repeated interleaved sampling, DynamoDB
request and capacity-unit counting, and the JSON every benchmark writes for the report
(``tests/bench/report.py`` turns ``bench-results/*.json`` into BENCHMARKS.md).

Quick mode (``BENCH_QUICK=1`` or ``--quick``): small sizes, every code path, a few minutes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feaas.dao import Blobs, Dao, Documents, Streams, make_clients
from feaas.dao.running import RUNNING_STREAM
from tests.support import localstack

TABLE, STREAMS_TABLE, BUCKET = "bench-docs", "bench-streams", "bench-bucket"
ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", ROOT / "bench-results"))


def quick_mode(argv: list[str] | None = None) -> bool:
    """``BENCH_QUICK=1`` in the environment or ``--quick`` on the command line."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0") or "--quick" in (argv or sys.argv[1:])


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
    return Dao(
        docs=Documents(clients.dynamodb, TABLE, "object_id", "ownerIndex"),
        streams=Streams(clients.dynamodb, STREAMS_TABLE),
        blobs=Blobs(clients.s3, BUCKET),
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


# --- repeated, interleaved samples -----------------------------------------------------------


@dataclass
class Stats:
    median: float
    low: float
    high: float
    n: int

    @property
    def spread(self) -> float:
        """(max − min) / median: how far apart the repeats were."""
        return (self.high - self.low) / self.median if self.median else 0.0

    def text(self, fmt: str = ",.0f", unit: str = "") -> str:
        return (
            f"{self.median:{fmt}}{unit} [{self.low:{fmt}}–{self.high:{fmt}}, n={self.n}, "
            f"spread {self.spread:.0%}]"
        )


def stats(samples: list[float]) -> Stats:
    return Stats(statistics.median(samples), min(samples), max(samples), len(samples))


def interleaved(
    variants: Mapping[str, Callable[[], dict[str, float]]], repeats: int, warmup: int = 1
) -> dict[str, list[dict[str, float]]]:
    """Run each variant ``warmup`` times (discarded), then ``repeats`` rounds in A/B/A/B order:
    every round runs every variant once, so drift and noise hit them alike. Each call returns its
    measurements (a dict of numbers); the kept ones are returned per variant."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    kept: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for round_no in range(repeats):
        for name, fn in variants.items():
            kept[name].append(fn())
        print(
            f"  round {round_no + 1}/{repeats}: " + ", ".join(f"{n} {_brief(kept[n][-1])}" for n in variants),
            flush=True,
        )
    return kept


def _brief(sample: Mapping[str, float]) -> str:
    if "items_per_s" in sample:
        return f"{sample['items_per_s']:,.0f}/s"
    return f"{sample.get('seconds', 0):.2f} s"


def column(samples: list[dict[str, float]], key: str) -> list[float]:
    return [s[key] for s in samples]


# --- DynamoDB requests and capacity units ------------------------------------------------------


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (wire form)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v)
    return 0


def _update_units(params: Mapping[str, Any]) -> int:
    return write_units(item_size({**params["Key"], **params.get("ExpressionAttributeValues", {})}))


def _is_job_write(params: Mapping[str, Any]) -> bool:
    """A write to a job document or to the running-jobs index: the job's fixed cost, not an item's."""
    key = params.get("Key") or params.get("Item") or {}
    object_id = key.get("object_id", {}).get("S", "")
    return "/job." in object_id or key.get("stream_id", {}).get("S", "") == RUNNING_STREAM


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)


@dataclass
class Meter:
    """DynamoDB requests (HTTP attempts, retries included) and capacity units as AWS would bill
    them, computed from item sizes: 1 WCU per KB written (UpdateItem: the key and the values it
    sets — AWS bills the larger of the item before and after, the same for the small collection
    items here), twice that inside a transaction; 1 RCU per 4 KB read strongly consistent, half
    eventually consistent (a Query is billed on the summed size of its page). Writes to the job
    document and the running index are counted apart (``job_wcu``): a job's fixed cost."""

    requests: int = 0
    wcu: float = 0.0
    rcu: float = 0.0
    job_wcu: float = 0.0  # the job record's own writes (claim, progress, finish, running index)
    split_job_writes: bool = True  # False: a job document written per item is an item's cost
    by_operation: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-send.dynamodb", self._sent)
        events.register("before-parameter-build.dynamodb", self._writes)
        events.register("after-call.dynamodb", self._reads)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "wcu": self.wcu,
                "rcu": self.rcu,
                "job_wcu": self.job_wcu,
                "by_operation": dict(self.by_operation),
            }

    def _sent(self, **_: Any) -> None:
        with self.lock:
            self.requests += 1

    def _writes(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        units = job_units = 0
        if name == "PutItem":
            units = write_units(item_size(params["Item"]))
        elif name == "UpdateItem":
            units = _update_units(params)
        elif name == "BatchWriteItem":
            units = sum(
                write_units(
                    item_size(r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"])
                )
                for requests in params["RequestItems"].values()
                for r in requests
            )
        elif name == "TransactWriteItems":
            for action in params["TransactItems"]:
                if "Put" in action:
                    units += 2 * write_units(item_size(action["Put"]["Item"]))
                elif "Update" in action:
                    units += 2 * _update_units(action["Update"])
                elif "Delete" in action:
                    units += 2
        if (
            self.split_job_writes
            and name in ("PutItem", "UpdateItem", "DeleteItem")
            and _is_job_write(params)
        ):
            units, job_units = 0, max(units, 1)
        with self.lock:
            self.wcu += units
            self.job_wcu += job_units
            self.by_operation[name] = self.by_operation.get(name, 0) + 1

    def _reads(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        units = 0.0
        if name == "Query" or name == "Scan":
            if "Items" in parsed:
                units = read_units(sum(item_size(i) for i in parsed["Items"]), False)
            else:  # Select=COUNT is billed on what it read; the count's items are small keys
                units = read_units(int(parsed.get("ScannedCount", 0)) * 100, False)
        elif name == "GetItem":
            units = read_units(item_size(parsed.get("Item") or {}), True)
        elif name == "BatchGetItem":
            units = sum(
                read_units(item_size(i), True)
                for items in parsed.get("Responses", {}).values()
                for i in items
            )
        with self.lock:
            self.rcu += units


@contextmanager
def metered_clients() -> Iterator[Meter]:
    """Every client ``feaas.dao.make_clients`` builds meanwhile (the worker's) is metered."""
    import feaas.dao as dao_module

    meter = Meter()
    real = dao_module.make_clients

    def metering(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        meter.attach(made.dynamodb)
        return made

    dao_module.make_clients = metering  # type: ignore[assignment]
    try:
        yield meter
    finally:
        dao_module.make_clients = real  # type: ignore[assignment]


# --- a latency-adding proxy in a process of its own -------------------------------------------


@contextmanager
def latency_proxy(upstream_port: int, latency_s: float, throttle: float = 0.0) -> Iterator[str]:
    """``tests/support/faultproxy.py`` in its own process (it must not share this process's GIL
    with the worker it measures): adds ``latency_s`` to every request, optionally throttles.
    Yields its URL."""
    code = (
        "import sys, time\n"
        "from tests.support.faultproxy import FaultProxy\n"
        f"p = FaultProxy({upstream_port}, latency={latency_s}, throttle={throttle}, seed=1)\n"
        "p.__enter__(); print(p.port, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = int(proc.stdout.readline())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


# --- results -------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    measured: float
    bound: str  # "≥ 0.9" or "≤ 2"
    ok: bool
    detail: str = ""


def at_least(name: str, measured: float, bound: float, detail: str = "") -> Target:
    return Target(name, measured, f"≥ {bound:g}", measured >= bound, detail)


def at_most(name: str, measured: float, bound: float, detail: str = "") -> Target:
    return Target(name, measured, f"≤ {bound:g}", measured <= bound, detail)


@dataclass
class Results:
    """What a benchmark writes to ``bench-results/{benchmark}.json`` for the report."""

    benchmark: str
    title: str
    quick: bool
    tables: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)

    def table(self, title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows, "note": note})
        print(f"\n{title}")
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        print("  ".join(f"{c:<{w}}" for c, w in zip(columns, widths, strict=True)))
        for r in rows:
            print("  ".join(f"{v!s:<{w}}" for v, w in zip(r, widths, strict=True)))
        if note:
            print(note)
        sys.stdout.flush()

    def plot(
        self,
        stem: str,
        title: str,
        xlabel: str,
        ylabel: str,
        series: dict[str, list[list[float]]],
        *,
        xlog: bool = False,
        ylog: bool = False,
    ) -> None:
        self.plots.append(
            {
                "stem": stem,
                "title": title,
                "xlabel": xlabel,
                "ylabel": ylabel,
                "series": series,
                "xlog": xlog,
                "ylog": ylog,
            }
        )

    def save(self) -> int:
        """Write the JSON, print the targets, and return the exit code (1 when one is missed)."""
        print(f"\nTargets ({self.benchmark})")
        for t in self.targets:
            verdict = "ok    " if t.ok else "MISSED"
            print(f"  {verdict} {t.name}: {t.measured:.3f} (target {t.bound}) {t.detail}")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        data = {
            **asdict(self),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }
        path = RESULTS_DIR / f"{self.benchmark}.json"
        path.write_text(json.dumps(data, indent=1, default=str))
        print(f"raw samples: {path}")
        return 0 if all(t.ok for t in self.targets) else 1


# --- the plain table bench_start prints --------------------------------------------------------


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
        print(
            f"{r.name:<44} {r.measured:>18} {r.baseline:>18} {r.ratio:>8.3f}  {r.target:<10} "
            f"{'ok' if r.ok else 'MISSED'}"
        )
    sys.stdout.flush()
    return all(r.ok for r in rows)
