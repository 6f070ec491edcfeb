"""The local AWS stack (tests/support/localstack/) against real DynamoDB Local and SeaweedFS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import localstack

REPO = Path(__file__).resolve().parents[2]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = localstack.start(tmp_path_factory.mktemp("stack"))
    yield s
    localstack.stop(s)


@pytest.fixture()
def aws_env(stack, monkeypatch):
    """Only the stack's variables: boto3 must find endpoints, keys and region by itself."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    return stack.env


def test_env_and_state_file(stack):
    env = stack.env
    assert set(env) == {
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    }
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == f"http://127.0.0.1:{stack.dynamodb_port}"
    assert env["AWS_ENDPOINT_URL_S3"] == f"http://127.0.0.1:{stack.s3_port}"
    assert stack.access_key.startswith("LOCAL") and len(stack.secret_key) >= 32
    assert localstack.load(stack.state_dir) == stack
    saved = json.loads((stack.state_dir / "stack.json").read_text())
    assert saved["dynamodb_pid"] == stack.dynamodb_pid and saved["s3_port"] == stack.s3_port


def test_create_resources_both_projections(aws_env):
    ddb = boto3.client("dynamodb")
    for table, projection in (("docs-all", "ALL"), ("docs-keys", "KEYS_ONLY")):
        for _ in range(2):  # idempotent
            localstack.create_resources(
                aws_env,
                table=table,
                streams_table="streams",
                bucket="bucket-res",
                owner_index_projection=projection,
            )
        desc = ddb.describe_table(TableName=table)["Table"]
        assert desc["KeySchema"] == [{"AttributeName": "object_id", "KeyType": "HASH"}]
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        (gsi,) = desc["GlobalSecondaryIndexes"]
        assert gsi["IndexName"] == "ownerIndex"
        assert gsi["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
        assert gsi["Projection"]["ProjectionType"] == projection
    streams = ddb.describe_table(TableName="streams")["Table"]
    assert streams["KeySchema"] == [
        {"AttributeName": "stream_id", "KeyType": "HASH"},
        {"AttributeName": "timestamp", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in streams["AttributeDefinitions"]}
    assert types == {"stream_id": "S", "timestamp": "N"}
    assert "bucket-res" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]


def test_custom_key_attribute_and_index(aws_env):
    localstack.create_resources(
        aws_env,
        table="docs-custom",
        streams_table="streams-custom",
        bucket="bucket-custom",
        key_attribute="pk",
        owner_index="byOwner",
    )
    desc = boto3.client("dynamodb").describe_table(TableName="docs-custom")["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert desc["GlobalSecondaryIndexes"][0]["IndexName"] == "byOwner"


def test_put_get_query_and_conditional_check_failure(aws_env):
    localstack.create_resources(
        aws_env, table="docs-items", streams_table="streams-items", bucket="bucket-items"
    )
    table = boto3.resource("dynamodb").Table("docs-items")
    item = {"object_id": "h/u@x/job.1", "owner": "h/u@x/job", "status": "RUNNING"}
    table.put_item(Item=item)
    assert table.get_item(Key={"object_id": "h/u@x/job.1"})["Item"] == item
    from boto3.dynamodb.conditions import Key

    found = table.query(IndexName="ownerIndex", KeyConditionExpression=Key("owner").eq("h/u@x/job"))["Items"]
    assert found == [item]
    with pytest.raises(ClientError) as info:
        table.update_item(
            Key={"object_id": "h/u@x/job.1"},
            UpdateExpression="SET #s = :new",
            ConditionExpression="#s = :expected",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":new": "SUCCEEDED", ":expected": "INITIALIZING"},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert info.value.response["Item"]["status"] == {"S": "RUNNING"}
    assert table.get_item(Key={"object_id": "h/u@x/job.1"})["Item"]["status"] == "RUNNING"


def test_s3_put_get_with_stack_keys(aws_env):
    s3 = boto3.client("s3")  # endpoint, keys and region from the environment only
    s3.create_bucket(Bucket="bucket-data")
    s3.put_object(Bucket="bucket-data", Key="h/u@x/a.txt", Body=b"hello")
    assert s3.get_object(Bucket="bucket-data", Key="h/u@x/a.txt")["Body"].read() == b"hello"
    # boto3 picks path-style by itself for an IP endpoint; an explicit path-style client agrees.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket-data", "Key": "h/u@x/a.txt"})
    assert url.startswith(f"{aws_env['AWS_ENDPOINT_URL_S3']}/bucket-data/")
    path_style = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    assert path_style.head_object(Bucket="bucket-data", Key="h/u@x/a.txt")["ContentLength"] == 5


def test_s3_behaves_like_aws_for_missing_bucket(aws_env):
    s3 = boto3.client("s3")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"x")
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"


def test_wrong_secret_key_gets_403(stack):
    bad = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        region_name=stack.region,
        aws_access_key_id=stack.access_key,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as info:
        bad.list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        region_name=stack.region,
        aws_access_key_id="LOCALNOBODY",
        aws_secret_access_key=stack.secret_key,
    )
    with pytest.raises(ClientError) as info:
        unknown.list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_listening_sockets_are_loopback_only(stack):
    ddb = localstack.listening_addresses(stack.dynamodb_pid)
    s3 = localstack.listening_addresses(stack.s3_pid)
    assert ("127.0.0.1", stack.dynamodb_port) in ddb
    assert ("127.0.0.1", stack.s3_port) in s3
    assert len(s3) == 1 + len(stack.weed_ports)
    assert {addr for addr, _ in ddb + s3} == {"127.0.0.1"}
    # Cross-check with ss: nothing of ours listens on a wildcard or external address.
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = [
        line
        for line in out.splitlines()
        if f"pid={stack.dynamodb_pid}," in line or f"pid={stack.s3_pid}," in line
    ]
    assert len(ours) == len(ddb) + len(s3)
    for line in ours:
        local = line.split()[3]
        assert local.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]"), line


def test_two_stacks_coexist(stack, tmp_path):
    other = localstack.start(tmp_path / "other")
    try:
        assert {other.dynamodb_port, other.s3_port}.isdisjoint({stack.dynamodb_port, stack.s3_port})
        assert other.client("dynamodb").list_tables()["TableNames"] == []
        assert other.client("s3").list_buckets()["Buckets"] == []
        with pytest.raises(localstack.LocalStackError, match="already running"):
            localstack.start(tmp_path / "other")
    finally:
        localstack.stop(other)


def test_persistent_restart_keeps_data(tmp_path):
    s = localstack.start(tmp_path / "persist", persistent=True)
    try:
        localstack.create_resources(s.env, table="docs", streams_table="streams", bucket="bucket")
        ddb, s3 = s.client("dynamodb"), s.client("s3")
        ddb.put_item(TableName="docs", Item={"object_id": {"S": "a.1"}, "owner": {"S": "a"}})
        s3.put_object(Bucket="bucket", Key="a/f.bin", Body=b"\x00" * 1000)

        old_pid, port = s.dynamodb_pid, s.dynamodb_port
        localstack.stop_dynamodb(s)
        assert not _port_open(port)
        localstack.start_dynamodb(s)
        assert s.dynamodb_port == port and s.dynamodb_pid != old_pid
        assert localstack.load(s.state_dir).dynamodb_pid == s.dynamodb_pid
        assert ddb.get_item(TableName="docs", Key={"object_id": {"S": "a.1"}})["Item"]["owner"] == {"S": "a"}

        old_pid, port = s.s3_pid, s.s3_port
        localstack.stop_s3(s)
        assert not _port_open(port)
        localstack.start_s3(s)
        assert s.s3_port == port and s.s3_pid != old_pid
        assert s3.get_object(Bucket="bucket", Key="a/f.bin")["Body"].read() == b"\x00" * 1000
    finally:
        localstack.stop(s)
    # a persistent stack keeps its data on disk after stop
    assert (s.state_dir / localstack.DYNAMODB_DATA_DIR).is_dir()
    assert (s.state_dir / localstack.S3_DATA_DIR).is_dir()


def test_stop_kills_both_and_is_idempotent(tmp_path):
    s = localstack.start(tmp_path / "stopme")
    pids = (s.dynamodb_pid, s.s3_pid)
    ports = [s.dynamodb_port, s.s3_port, *s.weed_ports.values()]
    localstack.stop(s.state_dir)  # by directory, as the CLI does
    for pid in pids:
        assert not localstack.alive(pid)
    assert not any(_port_open(p) for p in ports)
    assert not (s.state_dir / "stack.json").exists()
    assert not (s.state_dir / localstack.S3_DATA_DIR).exists()
    assert not any(Path("/tmp").glob(f"seaweedfs-*-{s.s3_port}.sock"))
    localstack.stop(s)  # again: nothing to do
    localstack.stop(s.state_dir)


def test_cli_start_env_stop(tmp_path):
    state = tmp_path / "cli"
    run = [sys.executable, "-m", "tests.support.localstack"]
    started = subprocess.run(
        [*run, "start", "--state-dir", str(state), "--create-resources"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        assert started.returncode == 0, started.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
        stack = localstack.load(state)
        assert exports == stack.env
        again = subprocess.run(
            [*run, "env", "--state-dir", str(state)], cwd=REPO, capture_output=True, text=True, check=True
        )
        assert again.stdout == started.stdout
        ddb = stack.client("dynamodb")
        assert set(ddb.list_tables()["TableNames"]) >= {"plus-docs", "plus-streams"}
        assert [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]] == ["plus-bucket"]
        shell = subprocess.run(
            [
                "bash",
                "-c",
                f'eval "$(test_scripts/local_stack.sh env --state-dir {state})"; echo "$AWS_ENDPOINT_URL_S3"',
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        assert shell.stdout.strip() == stack.s3_endpoint
    finally:
        stopped = subprocess.run(
            [*run, "stop", "--state-dir", str(state)], cwd=REPO, capture_output=True, text=True, check=False
        )
    assert stopped.returncode == 0, stopped.stderr
    assert not localstack.alive(stack.dynamodb_pid) and not localstack.alive(stack.s3_pid)
