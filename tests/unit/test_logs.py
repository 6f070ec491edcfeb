"""The text log format a person reads: no `=None` noise, whole floats as integers (issue 11)."""

from __future__ import annotations

import json
import logging

from feaas.logs import JsonFormatter, TextFormatter


def record(**fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("feaas.test", logging.INFO, __file__, 1, "job_finished", None, None)
    rec.fields = fields  # type: ignore[attr-defined]
    return rec


def test_text_lines_leave_out_absent_values_and_tidy_whole_floats() -> None:
    line = TextFormatter().format(record(status="SUCCEEDED", error_message=None, task_arn=None, percent=100.0,
                                         duration_ms=12.5))
    assert line.endswith("job_finished status=SUCCEEDED percent=100 duration_ms=12.5")
    assert "None" not in line


def test_json_lines_keep_every_field() -> None:
    line = json.loads(JsonFormatter().format(record(error_message=None, percent=100.0)))
    assert line["error_message"] is None and line["percent"] == 100.0
