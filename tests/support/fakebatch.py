"""A small AWS Batch API emulator for ``run-task.sh --batch``: the REST-JSON ``SubmitJob`` and
``DescribeJobs`` (``POST /v1/submitjob``, ``POST /v1/describejobs``). moto's Batch backend accepts
the submission but runs jobs with docker: without it every child fails and an array parent stays
SUBMITTED for ever, so the wait cannot be tested on it. Here the test decides how each child ends
(:attr:`FakeBatch.outcomes`, index -> exit code; default 0): the job is RUNNING for its first
:attr:`FakeBatch.polls_running` DescribeJobs of the parent, then every child ends with its code.
Point ``AWS_ENDPOINT_URL_BATCH`` at :attr:`url` (everything else stays on moto)."""

from __future__ import annotations

import threading
from typing import Any

from tests.support.jsonapi import JsonHandler, JsonServer


class FakeBatch:
    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.outcomes: dict[int, int] = {}
        self.polls_running = 1
        self.parent_polls = 0
        #: a child's log stream is this prefix, then ``<job id>-<index>`` (awslogs: prefix/container/id)
        self.log_stream_prefix = "worker/default/"
        self._lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):

            def do_POST(self) -> None:
                body = self.body()
                with fake._lock:
                    if self.path == "/v1/submitjob":
                        fake.submitted.append(body)
                        job_id = f"job-{len(fake.submitted)}"
                        self._reply(200, {"jobId": job_id, "jobName": body.get("jobName"),
                                          "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"})
                    elif self.path == "/v1/describejobs":
                        self._reply(200, {"jobs": [fake._describe(i) for i in body.get("jobs", [])]})
                    else:
                        self._reply(400, {"__type": "ClientException",
                                          "message": f"unsupported: {self.path}"})

        self.http = JsonServer(Handler)
        self.url = self.http.url

    def _describe(self, job_id: str) -> dict[str, Any]:
        """One job as DescribeJobs shows it: the parent (RUNNING, then SUCCEEDED or FAILED) or a child."""
        parent, _, index = job_id.partition(":")
        request = self.submitted[int(parent.removeprefix("job-")) - 1]
        size = int((request.get("arrayProperties") or {}).get("size") or 1)
        job: dict[str, Any] = {"jobId": job_id, "jobName": request["jobName"],
                               "jobQueue": request["jobQueue"]}
        if not index:
            self.parent_polls += 1
            if self.parent_polls <= self.polls_running:
                return {**job, "status": "RUNNING"}
            failed = any(self.outcomes.get(i, 0) for i in range(size))
            job["status"] = "FAILED" if failed else "SUCCEEDED"
            if size > 1:
                job["arrayProperties"] = {"size": size}
                return job
            index = "0"
        code = self.outcomes.get(int(index), 0)
        job.update(status="FAILED" if code else "SUCCEEDED",
                   container={"exitCode": code, "logStreamName": f"{self.log_stream_prefix}{parent}-{index}"},
                   statusReason="Essential container in task exited")
        if size > 1:
            job["arrayProperties"] = {"index": int(index)}
        return job

    def close(self) -> None:
        self.http.close()
