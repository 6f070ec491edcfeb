"""feaas.metrics writes valid CloudWatch Embedded Metric Format lines."""

from __future__ import annotations

import io
import json
import math

import pytest

from feaas import metrics


def lines(buf: io.StringIO) -> list[dict]:
    text = buf.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def assert_valid_emf(doc: dict) -> None:
    """Every declared metric and dimension is a top-level member; values are numbers."""
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert isinstance(doc["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "PlusWorker"
    for dimension_set in directive["Dimensions"]:
        for name in dimension_set:
            assert isinstance(doc[name], str)
    for metric in directive["Metrics"]:
        assert isinstance(doc[metric["Name"]], float) and math.isfinite(doc[metric["Name"]])
        assert metric["Unit"] in {"Milliseconds", "Count"}


def test_item_processed() -> None:
    buf = io.StringIO()
    metrics.item_processed(12.5, True, run_mode="RUN_COLLECTION", stream=buf, timestamp_ms=1_764_633_600_000)
    metrics.item_processed(3, False, run_mode="RUN_COLLECTION", stream=buf)
    ok, failed = lines(buf)
    for doc in (ok, failed):
        assert_valid_emf(doc)
        assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["RunMode"]]
        assert doc["RunMode"] == "RUN_COLLECTION"
    assert ok["_aws"]["Timestamp"] == 1_764_633_600_000
    assert (ok["ItemDuration"], ok["ItemsSucceeded"], ok["ItemsFailed"]) == (12.5, 1.0, 0.0)
    assert (failed["ItemDuration"], failed["ItemsSucceeded"], failed["ItemsFailed"]) == (3.0, 0.0, 1.0)


def test_job_finished() -> None:
    buf = io.StringIO()
    metrics.job_finished(90_000, "FAILED", 40, run_mode="RUN_STREAM", stream=buf)
    [doc] = lines(buf)
    assert_valid_emf(doc)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["RunMode", "Status"]]
    assert (doc["RunMode"], doc["Status"]) == ("RUN_STREAM", "FAILED")
    assert (doc["JobDuration"], doc["JobItems"], doc["JobsSucceeded"], doc["JobsFailed"]) == (
        90000.0,
        40.0,
        0.0,
        1.0,
    )


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.job_finished(1.0, "SUCCEEDED", 0)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out)["JobsSucceeded"] == 1.0


def test_emf_record_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        metrics.emf_record({"X": (math.nan, "Count")}, {"RunMode": "RUN_JOB"})
    with pytest.raises(ValueError):
        metrics.emf_record({"RunMode": (1.0, "Count")}, {"RunMode": "RUN_JOB"})


@pytest.mark.parametrize(
    ("value", "enabled"), [("emf", True), (" EMF ", True), ("", False), (None, False), ("off", False)]
)
def test_is_enabled(value: str | None, enabled: bool) -> None:
    assert metrics.is_enabled(value) is enabled
