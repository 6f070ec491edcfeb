"""A small ECS API emulator for the sweeper's tests: the AWS JSON protocol's ``DescribeTasks`` and
``RunTask`` (``X-Amz-Target: AmazonEC2ContainerServiceV20141113.*``), with stopped tasks whose stop
code, reason and exit code the test sets (moto cannot), and the task metadata endpoint (v4) a worker
reads its task ARN from (``GET /meta/<arn>/task``). Point ``AWS_ENDPOINT_URL_ECS`` at :attr:`url`."""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

from tests.support.jsonapi import JsonHandler, JsonServer

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
TASK_PREFIX = "arn:aws:ecs:us-east-1:000000000000:task/c/"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:000000000000:task-definition/plus-worker:7"


class FakeEcs:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.run_task_calls: list[dict[str, Any]] = []
        self.describe_tasks_calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            content_type = "application/x-amz-json-1.1"

            def do_GET(self) -> None:  # the metadata endpoint: /meta/<quoted arn>/task
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "meta" and parts[2] == "task":
                    self._reply(200, {"TaskARN": urllib.parse.unquote(parts[1])})
                else:
                    self._reply(404, {})

            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                body = self.body()
                op = target.removeprefix(TARGET_PREFIX)
                if op == "DescribeTasks":
                    with fake._lock:
                        fake.describe_tasks_calls.append(body)
                        found = [fake.tasks[a] for a in body.get("tasks", []) if a in fake.tasks]
                    missing = [{"arn": a, "reason": "MISSING"} for a in body.get("tasks", [])
                               if a not in fake.tasks]
                    self._reply(200, {"tasks": found, "failures": missing})
                elif op == "RunTask":
                    with fake._lock:
                        fake.run_task_calls.append(body)
                        arn = f"{TASK_PREFIX}relaunched{len(fake.run_task_calls)}"
                    started = {"taskArn": arn, "lastStatus": "PROVISIONING"}
                    self._reply(200, {"tasks": [started], "failures": []})
                else:
                    self._reply(400, {"__type": "InvalidAction", "message": f"unsupported: {target}"})

        self.http = JsonServer(Handler)
        self.url = self.http.url

    def metadata_uri(self, task_arn: str) -> str:
        return f"{self.url}/meta/{urllib.parse.quote(task_arn, safe='')}"

    def stopped(self, task_arn: str, *, stop_code: str, reason: str, exit_code: int | None,
                container_reason: str = "", environment: dict[str, str] | None = None,
                task_definition: str = TASK_DEFINITION) -> None:
        """Declare ``task_arn`` STOPPED the way ECS describes it."""
        container: dict[str, Any] = {"name": "worker", "lastStatus": "STOPPED"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        if container_reason:
            container["reason"] = container_reason
        with self._lock:
            self.tasks[task_arn] = {
                "taskArn": task_arn, "lastStatus": "STOPPED", "stopCode": stop_code, "stoppedReason": reason,
                "taskDefinitionArn": task_definition, "containers": [container],
                "overrides": {"containerOverrides": [{"name": "worker", "environment": [
                    {"name": k, "value": v} for k, v in (environment or {}).items()]}]},
            }

    def close(self) -> None:
        self.http.close()
