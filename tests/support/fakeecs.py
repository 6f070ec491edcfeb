"""A small ECS API emulator for the sweeper's tests: the AWS JSON protocol's ``DescribeTasks`` and
``RunTask`` (``X-Amz-Target: AmazonEC2ContainerServiceV20141113.*``), with stopped tasks whose stop
code, reason and exit code the test sets (moto cannot), and the task metadata endpoint (v4) a worker
reads its task ARN from (``GET /meta/<arn>/task``). Point ``AWS_ENDPOINT_URL_ECS`` at :attr:`url`."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # the metadata endpoint: /meta/<quoted arn>/task
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "meta" and parts[2] == "task":
                    self._reply(200, {"TaskARN": urllib.parse.unquote(parts[1])})
                else:
                    self._reply(404, {})

            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

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
        self.server.shutdown()
        self.server.server_close()
