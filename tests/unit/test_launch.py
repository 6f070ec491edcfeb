"""feaas.launch builds job documents and RunTask requests in plus-engine's format (no I/O)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from google.protobuf.json_format import ParseDict

from feaas.launch import (
    LaunchError,
    add_task_requests,
    client_token,
    launch_job,
    new_job_item,
    run_task_request,
    run_task_requests,
    submit_job_request,
    to_dynamodb,
)
from feaas.launch import main as launch_main
from feaas.objects import PlusScript, PlusScriptJob, PlusScriptNode, PlusScriptNodeType

HOST, USER = "plus_example_com", "ada@example.com"


def script() -> PlusScript:
    return PlusScript(
        label="add",
        nodes=[PlusScriptNode(ntype=PlusScriptNodeType.ACTION, unique_id="add", action_id="sys.math.add")],
    )


def request(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "cluster": "plus-worker",
        "task_definition": "plus-worker:7",
        "subnets": ["subnet-1", "subnet-2"],
        "security_groups": ["sg-1"],
        "job_id": f"{HOST}/{USER}/job.0f0e",
        "username": USER,
    }
    kwargs.update(overrides)
    return run_task_request(**kwargs)


def env_of(req: dict[str, Any]) -> dict[str, str]:
    [override] = req["overrides"]["containerOverrides"]
    return {e["name"]: e["value"] for e in override["environment"]}


def test_new_job_item_is_plus_engine_json() -> None:
    item = new_job_item(
        hostname=HOST,
        username=USER,
        script=script(),
        label="demo",
        input_data={"a": 2},
        job_uuid="1234",
        created_at=1764633600,
    )
    assert item["object_id"] == f"{HOST}/{USER}/job.1234"
    assert item["owner"] == f"{HOST}/{USER}/job"
    assert item["status"] == "INITIALIZING"
    assert item["created_at"] == "1764633600"  # int64 as a string, as MessageToDict writes it
    assert item["script"]["nodes"][0] == {"ntype": "ACTION", "unique_id": "add", "action_id": "sys.math.add"}
    assert item["hostname"] == HOST and item["username"] == USER and item["input_data"] == {"a": 2}
    assert "job_type" not in item and "request_cancel" not in item
    # The message part parses back (extra attributes ignored).
    job = ParseDict(item, PlusScriptJob(), ignore_unknown_fields=True)
    assert job.script.nodes[0].action_id == "sys.math.add" and job.created_at == 1764633600


def test_new_job_item_extras_and_defaults() -> None:
    item = new_job_item(
        hostname=HOST,
        username=USER,
        script={"label": "s"},
        job_type="run_on_collection",
        collection_owner=f"{HOST}/{USER}/things",
        timeout_seconds=600,
        tolerated_failure_percent=10.0,
        key_attribute="pk",
    )
    assert re.fullmatch(rf"{HOST}/{USER}/job\.[0-9a-f-]{{36}}", item["object_id"])
    assert item["pk"] == item["object_id"]
    assert item["job_type"] == "run_on_collection" and item["timeout_seconds"] == 600
    assert item["collection_owner"] == f"{HOST}/{USER}/things"
    assert int(item["created_at"]) > 1_700_000_000
    assert new_job_item(hostname=HOST, username=USER)["object_id"] != item["object_id"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hostname": "a/b", "username": USER},
        {"hostname": HOST, "username": ""},
        {"hostname": HOST, "username": USER, "job_type": "run_on_everything"},
        {"hostname": HOST, "username": USER, "timeout_seconds": 0},
    ],
)
def test_new_job_item_rejects_bad_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        new_job_item(**kwargs)


def test_to_dynamodb_turns_floats_into_decimals() -> None:
    assert to_dynamodb({"a": [1.5, {"b": 0.1}], "c": True, "d": 3, "e": "x"}) == {
        "a": [Decimal("1.5"), {"b": Decimal("0.1")}],
        "c": True,
        "d": 3,
        "e": "x",
    }


def test_run_task_request() -> None:
    req = request(run_mode="RUN_SCRIPT")
    assert req["cluster"] == "plus-worker" and req["taskDefinition"] == "plus-worker:7"
    assert req["launchType"] == "FARGATE" and req["count"] == 1
    assert req["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-1", "subnet-2"],
            "securityGroups": ["sg-1"],
            "assignPublicIp": "ENABLED",
        }
    }
    assert req["overrides"]["containerOverrides"][0]["name"] == "worker"
    assert env_of(req) == {"RUN_MODE": "RUN_SCRIPT", "JOB_ID": f"{HOST}/{USER}/job.0f0e", "USERNAME": USER}


def test_run_task_request_mode_specific_env() -> None:
    req = request(
        run_mode="RUN_ACTION",
        action_id="sys.math.add",
        action_input_json='{"a": 1, "b": 2}',
        assign_public_ip=False,
        extra_env={"LOG_LEVEL": "DEBUG"},
    )
    env = env_of(req)
    assert env["ACTION_ID"] == "sys.math.add" and env["ACTION_INPUT_JSON"] == '{"a": 1, "b": 2}'
    assert env["LOG_LEVEL"] == "DEBUG" and "SHARD_INDEX" not in env
    assert req["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


@pytest.mark.parametrize("name", ["ACCESS_KEY", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY"])
def test_run_task_request_never_passes_keys(name: str) -> None:
    with pytest.raises(ValueError, match="task role") as info:
        request(extra_env={name: "hunter2"})
    assert "hunter2" not in str(info.value)


def test_run_task_request_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        request(run_mode="RUN_EVERYTHING")
    with pytest.raises(ValueError):
        request(shard_index=2, shard_count=2)
    with pytest.raises(ValueError):
        request(subnets=[])


def test_run_task_request_starts_the_two_legacy_modes() -> None:
    script_id = f"{HOST}/{USER}/script.1"
    req = request(run_mode="RUN_PLUSSCRIPT", action_id=script_id, action_input_json='{"x": 1}')
    assert env_of(req) == {"RUN_MODE": "RUN_PLUSSCRIPT", "JOB_ID": f"{HOST}/{USER}/job.0f0e",
                           "USERNAME": USER, "ACTION_ID": script_id, "ACTION_INPUT_JSON": '{"x": 1}'}
    with pytest.raises(ValueError, match="action_id"):
        request(run_mode="RUN_PLUSSCRIPT")
    first = request(run_mode="REGISTER_ACTIONS", job_id=None, username=None,
                    extra_env={"PLUS_HOSTNAME": HOST})
    again = request(run_mode="REGISTER_ACTIONS", job_id=None, username=None)
    assert env_of(first) == {"RUN_MODE": "REGISTER_ACTIONS", "PLUS_HOSTNAME": HOST}
    assert first["clientToken"] != again["clientToken"]  # each publication is a new task
    with pytest.raises(ValueError, match="no job_id"):
        request(run_mode="REGISTER_ACTIONS")
    with pytest.raises(ValueError, match="needs a job_id"):
        request(run_mode="RUN_SCRIPT", job_id=None, username=None)


def test_shards_get_one_request_each() -> None:
    reqs = run_task_requests(
        shards=3,
        cluster="c",
        task_definition="t",
        subnets=["s"],
        security_groups=["g"],
        job_id="h/u/job.1",
        username="u",
        run_mode="RUN_COLLECTION",
        collection_owner="h/u/x",
    )
    assert [(env_of(r)["SHARD_INDEX"], env_of(r)["SHARD_COUNT"]) for r in reqs] == [
        ("0", "3"),
        ("1", "3"),
        ("2", "3"),
    ]
    assert len({r["clientToken"] for r in reqs}) == 3
    with pytest.raises(ValueError):
        run_task_requests(
            shards=0,
            cluster="c",
            task_definition="t",
            subnets=["s"],
            security_groups=["g"],
            job_id="j",
            username="u",
        )


def test_client_token_is_stable_short_and_safe() -> None:
    job_id = f"{HOST}/{'x' * 200}@example.com/job.3f2a9c4e-8d1b-4a57-9e0c-2b6f7d8e9a10"
    token = client_token(job_id)
    assert token == client_token(job_id)  # a retried launch sends the same token
    assert len(token) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert token != client_token(job_id, launch_attempt=2)
    assert token != client_token(job_id.replace("job.3", "job.4"))
    assert request()["clientToken"] == request()["clientToken"]


class FakeTable:
    def __init__(self, exists: bool = False) -> None:
        self.exists = exists
        self.puts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> None:
        self.puts.append(kwargs)
        if self.exists:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")

    def update_item(self, **kwargs: Any) -> None:
        self.updates.append(kwargs)


class FakeEcs:
    def __init__(self, response: dict[str, Any] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.response = response

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.response is not None:
            return self.response
        return {"tasks": [{"taskArn": f"arn:task/{len(self.calls)}"}], "failures": []}


LAUNCH = {"cluster": "c", "task_definition": "t", "subnets": ["s"], "security_groups": ["g"]}


def test_launch_job_puts_once_and_runs() -> None:
    table, ecs = FakeTable(), FakeEcs()
    item = new_job_item(hostname=HOST, username=USER, script=script(), job_type="singleton")
    item["script"]["nodes"][0]["layout"] = {"x": 1.5}
    assert launch_job(table, ecs, job_item=item, **LAUNCH) == ["arn:task/1"]
    [put] = table.puts
    assert put["ConditionExpression"] == "attribute_not_exists(#key)"
    assert put["ExpressionAttributeNames"] == {"#key": "object_id"}
    assert put["Item"]["script"]["nodes"][0]["layout"] == {"x": Decimal("1.5")}
    assert env_of(ecs.calls[0])["JOB_ID"] == item["object_id"]
    assert env_of(ecs.calls[0])["RUN_MODE"] == "RUN_JOB"


def test_launch_job_retry_keeps_document_and_token() -> None:
    item = new_job_item(hostname=HOST, username=USER)
    first, retry = FakeEcs(), FakeEcs()
    launch_job(FakeTable(), first, job_item=item, **LAUNCH)
    launch_job(FakeTable(exists=True), retry, job_item=item, **LAUNCH)
    assert first.calls[0]["clientToken"] == retry.calls[0]["clientToken"]


def test_launch_job_records_ecs_failure() -> None:
    table = FakeTable()
    ecs = FakeEcs({"tasks": [], "failures": [{"arn": "arn:x", "reason": "RESOURCE:MEMORY"}]})
    item = new_job_item(hostname=HOST, username=USER)
    with pytest.raises(LaunchError, match="RESOURCE:MEMORY") as info:
        launch_job(table, ecs, job_item=item, **LAUNCH)
    assert info.value.failures == [{"arn": "arn:x", "reason": "RESOURCE:MEMORY"}]
    [update] = table.updates
    assert update["Key"] == {"object_id": item["object_id"]}
    sets, condition = update_parts(update)
    assert sets["status"] == "FAILED"
    assert "RESOURCE:MEMORY" in sets["error_message"]
    assert "status = 'INITIALIZING'" in condition or "status IN ('INITIALIZING'" in condition


def update_parts(update: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """An UpdateItem request read back: the attributes its SET writes, and its condition with every
    placeholder replaced by the name or (repr of the) value it stands for."""
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    sets = {}
    for assignment in update["UpdateExpression"].removeprefix("SET ").split(", "):
        name, value = assignment.split(" = ")
        sets[names[name]] = values[value]
    condition = update["ConditionExpression"]
    for placeholder in sorted([*names, *values], key=len, reverse=True):
        condition = condition.replace(placeholder, names[placeholder] if placeholder in names
                                      else repr(values[placeholder]))
    return sets, condition


def test_launch_job_other_put_errors_propagate() -> None:
    class Broken(FakeTable):
        def put_item(self, **kwargs: Any) -> None:
            raise RuntimeError("throttled")

    ecs = FakeEcs()
    with pytest.raises(RuntimeError):
        launch_job(Broken(), ecs, job_item=new_job_item(hostname=HOST, username=USER), **LAUNCH)
    assert ecs.calls == []


def test_added_tasks_share_one_environment_and_get_tokens_of_their_own() -> None:
    kwargs: dict[str, Any] = {"cluster": "c", "task_definition": "t", "subnets": ["s"],
                              "security_groups": ["g"], "job_id": "h/u/job.1", "username": "u",
                              "run_mode": "RUN_COLLECTION", "collection_owner": "h/u/x"}
    reqs = add_task_requests(count=3, launch_attempt=7, **kwargs)
    assert len(reqs) == 3 and all(env_of(r) == env_of(reqs[0]) for r in reqs)
    assert "SHARD_INDEX" not in env_of(reqs[0]) and env_of(reqs[0])["JOB_ID"] == "h/u/job.1"
    assert len({r["clientToken"] for r in reqs}) == 3  # three tasks, not one retried
    assert reqs[0]["clientToken"] == add_task_requests(count=1, launch_attempt=7, **kwargs)[0]["clientToken"]
    assert reqs[0]["clientToken"] != add_task_requests(count=1, launch_attempt=8, **kwargs)[0]["clientToken"]
    assert client_token("h/u/job.1") == client_token("h/u/job.1", task_index=0)  # launches keep their tokens
    with pytest.raises(ValueError, match="only runs over many items"):
        add_task_requests(count=1, launch_attempt=1, **{**kwargs, "run_mode": "RUN_SCRIPT"})
    with pytest.raises(ValueError, match="at least 1"):
        add_task_requests(count=0, launch_attempt=1, **kwargs)


def test_run_task_requests_cli_adds_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run-task-requests", "--job-id", "h/u/job.1", "--username", "u", "--run-mode", "RUN_JOB",
            "--subnets", "s", "--security-groups", "g", "--add-tasks", "2"]
    assert launch_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert launch_main([*args, "--shards", "2"]) == 64
    assert "exclude each other" in capsys.readouterr().err


def test_submit_job_request_is_one_array_job_of_the_same_environment() -> None:
    """run-task.sh --batch N (issue 17): one SubmitJob, an array of N children that all run the job."""
    kwargs: dict[str, Any] = {"job_queue": "q", "job_definition": "d", "job_id": "h/u/job.1-2",
                              "username": "u", "run_mode": "RUN_COLLECTION", "collection_owner": "h/u/x"}
    req = submit_job_request(size=4, extra_env={"CONCURRENCY": "16"}, **kwargs)
    assert (req["jobQueue"], req["jobDefinition"], req["arrayProperties"]) == ("q", "d", {"size": 4})
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", req["jobName"]) and "1-2" in req["jobName"]
    env = {e["name"]: e["value"] for e in req["containerOverrides"]["environment"]}
    # AWS_BATCH_JOB_ARRAY_INDEX (0..3, set by Batch) is read as SHARD_INDEX, which must stay below SHARD_COUNT
    assert env == {"RUN_MODE": "RUN_COLLECTION", "JOB_ID": "h/u/job.1-2", "USERNAME": "u",
                   "COLLECTION_OWNER": "h/u/x", "SHARD_COUNT": "4", "CONCURRENCY": "16"}
    plain = submit_job_request(size=1, **kwargs)  # Batch wants 2..10000 for an array: one is a plain job
    assert "arrayProperties" not in plain and "SHARD_COUNT" not in str(plain)
    for bad, message in (({"size": 0}, "1..10000"), ({"size": 10001}, "1..10000"),
                         ({"size": 2, "run_mode": "RUN_SCRIPT"}, "only runs over many items"),
                         ({"size": 2, "extra_env": {"SECRET_KEY": "x"}}, "task role")):
        with pytest.raises(ValueError, match=message):
            submit_job_request(**{**kwargs, **bad})


def test_settings_accept_a_batch_child() -> None:
    """A child of an array of 3: AWS_BATCH_JOB_ARRAY_INDEX and AWS_BATCH_JOB_ID from Batch,
    SHARD_COUNT=3 from the request."""
    from feaas.settings import load_settings

    env = {"JOB_ID": "h/u/job.1", "USERNAME": "u", "RUN_MODE": "RUN_COLLECTION", "DYNAMO_TABLE": "t",
           "DYNAMO_STREAMS_TABLE": "s", "PRIMARY_BUCKET": "b", "REGION": "us-east-1",
           "AWS_BATCH_JOB_ARRAY_INDEX": "2", "SHARD_COUNT": "3", "AWS_BATCH_JOB_ID": "abc:2"}
    settings = load_settings(env)
    assert (settings.shard_index, settings.shard_count, settings.aws_batch_job_id) == (2, 3, "abc:2")
