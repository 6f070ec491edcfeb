"""feaas.launch's RunTask request against moto's ECS (in process): the request is accepted and
the task carries the overrides; launch_job writes the job once and starts one task per shard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from feaas.launch import launch_job, new_job_item, run_task_request

REGION = "us-east-1"


@pytest.fixture
def ecs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecs", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        client.create_cluster(clusterName="plus-worker")
        client.register_task_definition(
            family="plus-worker",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="512",
            memory="1024",
            containerDefinitions=[
                {"name": "worker", "image": "worker:abc", "memory": 1024, "essential": True}
            ],
        )
        client.test_subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        client.test_sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        yield client


def test_run_task_request_is_accepted(ecs: Any) -> None:
    job_id = "plus_example_com/ada@example.com/job.4711"
    request = run_task_request(
        cluster="plus-worker",
        task_definition="plus-worker",
        subnets=[ecs.test_subnet],
        security_groups=[ecs.test_sg],
        job_id=job_id,
        username="ada@example.com",
        run_mode="RUN_SCRIPT",
    )
    response = ecs.run_task(**request)
    assert response["failures"] == []
    [task] = response["tasks"]
    assert task["launchType"] == "FARGATE"
    env = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert env == {"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": "ada@example.com"}


class RecordingTable:
    """A DynamoDB table stand-in that enforces attribute_not_exists on the key."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        item = kwargs["Item"]
        if item["object_id"] in self.items:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
        self.items[item["object_id"]] = item

    def update_item(self, **kwargs: Any) -> None:  # pragma: no cover - not reached here
        raise AssertionError("no launch failure expected")


def test_launch_job_with_shards(ecs: Any) -> None:
    table = RecordingTable()
    item = new_job_item(
        hostname="plus_example_com",
        username="ada@example.com",
        job_type="run_on_collection",
        collection_owner="plus_example_com/ada@example.com/things",
    )
    kwargs: dict[str, Any] = {
        "cluster": "plus-worker",
        "task_definition": "plus-worker",
        "subnets": [ecs.test_subnet],
        "security_groups": [ecs.test_sg],
        "shards": 3,
    }
    arns = launch_job(table, ecs, job_item=item, **kwargs)
    assert len(arns) == 3 and len(set(arns)) == 3
    assert list(table.items) == [item["object_id"]]
    # A retry finds the document already there and still launches (ECS dedups by client token).
    assert len(launch_job(table, ecs, job_item=item, **kwargs)) == 3
    tasks = ecs.describe_tasks(cluster="plus-worker", tasks=arns)["tasks"]
    indexes = sorted(
        e["value"]
        for t in tasks
        for e in t["overrides"]["containerOverrides"][0]["environment"]
        if e["name"] == "SHARD_INDEX"
    )
    assert indexes == ["0", "1", "2"]
