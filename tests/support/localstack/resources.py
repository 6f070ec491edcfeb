"""The tables and the bucket the worker expects (SPEC §2), created on a running stack."""

from __future__ import annotations

import time
from collections.abc import Mapping

from tests.support.localstack.stack import DEFAULT_REGION, READY_TIMEOUT_SECONDS, LocalStackError, client_for


def _create_table(client, **kwargs) -> None:
    from botocore.exceptions import ClientError

    try:
        client.create_table(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        desc = client.describe_table(TableName=kwargs["TableName"])["Table"]
        statuses = [desc["TableStatus"]] + [
            g.get("IndexStatus", "ACTIVE") for g in desc.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise LocalStackError(f"table {kwargs['TableName']} not ACTIVE: {statuses}")
        time.sleep(0.05)


def create_resources(
    env: Mapping[str, str],
    *,
    table: str,
    streams_table: str,
    bucket: str,
    key_attribute: str = "object_id",
    owner_index: str = "ownerIndex",
    owner_index_projection: str = "ALL",
) -> None:
    """Create the documents table, the streams table and the bucket (SPEC §2). Idempotent."""
    from botocore.exceptions import ClientError

    projection = owner_index_projection.upper()
    if projection not in ("ALL", "KEYS_ONLY"):
        raise ValueError(f"owner_index_projection must be ALL or KEYS_ONLY, not {owner_index_projection!r}")
    dynamodb = client_for(env, "dynamodb")
    attributes = [{"AttributeName": key_attribute, "AttributeType": "S"}]
    if key_attribute != "owner":
        attributes.append({"AttributeName": "owner", "AttributeType": "S"})
    _create_table(
        dynamodb,
        TableName=table,
        AttributeDefinitions=attributes,
        KeySchema=[{"AttributeName": key_attribute, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": owner_index,
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": projection},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    _create_table(
        dynamodb,
        TableName=streams_table,
        AttributeDefinitions=[
            {"AttributeName": "stream_id", "AttributeType": "S"},
            {"AttributeName": "timestamp", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "stream_id", "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = client_for(env, "s3")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    kwargs: dict = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
