"""CloudWatch metrics as Embedded Metric Format (EMF) log lines.

Turned on with ``METRICS=emf`` (read by the settings object; nothing here reads the environment).
Each call writes one JSON line to a stream, stdout by default. In ECS the awslogs driver ships
stdout to CloudWatch Logs, which extracts the metrics from lines shaped like this (no agent,
no ``cloudwatch:PutMetricData`` permission needed)::

    {"_aws": {"Timestamp": 1764633600000,
              "CloudWatchMetrics": [{"Namespace": "PlusWorker", "Dimensions": [["RunMode"]],
                                     "Metrics": [{"Name": "ItemDuration", "Unit": "Milliseconds"}]}]},
     "RunMode": "RUN_COLLECTION", "ItemDuration": 12.5, ...}

Metrics (namespace ``PlusWorker``, dimension ``RunMode``, plus ``Status`` for jobs):
``ItemDuration`` / ``ItemsSucceeded`` / ``ItemsFailed`` per item, ``JobDuration`` /
``JobItems`` / ``JobsSucceeded`` / ``JobsFailed`` per finished job.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

NAMESPACE = "PlusWorker"
ENABLED_VALUE = "emf"


def is_enabled(setting: str | None) -> bool:
    """True when the ``METRICS`` setting asks for EMF output."""
    return (setting or "").strip().lower() == ENABLED_VALUE


def emf_record(
    metrics: Mapping[str, tuple[float, str]],
    dimensions: Mapping[str, str],
    *,
    properties: Mapping[str, Any] | None = None,
    timestamp_ms: int | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """One EMF document: ``metrics`` maps a name to ``(value, unit)``; all ``dimensions`` form
    one dimension set. ``properties`` are extra searchable fields (not metrics).

    Raises ValueError for a non-finite value or a name used twice.
    """
    clashes = set(metrics) & set(dimensions) | (set(properties or {}) & (set(metrics) | set(dimensions)))
    if clashes:
        raise ValueError(f"names used twice in one EMF record: {sorted(clashes)}")
    for name, (value, _unit) in metrics.items():
        if not math.isfinite(value):
            raise ValueError(f"metric {name} is not a finite number: {value}")
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_value, unit) in metrics.items()],
                }
            ],
        }
    }
    record.update(properties or {})
    record.update(dimensions)
    record.update({name: value for name, (value, _unit) in metrics.items()})
    return record


def emit(record: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Write ``record`` as one compact JSON line and flush (the line must not be split)."""
    out = sys.stdout if stream is None else stream
    out.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
    out.flush()


def _success_counts(noun: str, success: bool) -> dict[str, tuple[float, str]]:
    return {f"{noun}Succeeded": (1.0 if success else 0.0, "Count"),
            f"{noun}Failed": (0.0 if success else 1.0, "Count")}


def item_processed(duration_ms: float, success: bool, *, run_mode: str = "unknown",
                   stream: TextIO | None = None, timestamp_ms: int | None = None) -> None:
    """Record one processed item (collection, stream or files run) and how long it took."""
    metrics = {"ItemDuration": (float(duration_ms), "Milliseconds"), **_success_counts("Items", success)}
    emit(emf_record(metrics, {"RunMode": run_mode}, timestamp_ms=timestamp_ms), stream)


def job_finished(duration_ms: float, status: str, items: int, *, run_mode: str = "unknown",
                 stream: TextIO | None = None, timestamp_ms: int | None = None) -> None:
    """Record a finished job: its duration, item count and final status (SUCCEEDED/FAILED/...)."""
    metrics = {"JobDuration": (float(duration_ms), "Milliseconds"), "JobItems": (float(items), "Count"),
               **_success_counts("Jobs", status == "SUCCEEDED")}
    emit(emf_record(metrics, {"RunMode": run_mode, "Status": status}, timestamp_ms=timestamp_ms), stream)
