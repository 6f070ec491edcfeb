"""boto3 clients with the retry policy every DynamoDB and S3 call goes through.

Transient errors (throttling, 5xx, connection resets) are retried by botocore's ``standard``
retry mode with exponential backoff — no hand-written retry loops anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # the stubs are a dev dependency; at run time these are plain boto3 clients
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    s3: S3Client
    session: boto3.session.Session


#: Retries per request. botocore's "legacy" mode, on purpose: "standard" mode shares one retry
#: quota per client (about 50 connection-error retries, refilled only by successes), so a worker
#: with a dozen threads drains it within seconds of an outage and then fails every request at once.
#: Legacy mode retries throttling, 5xx and connection errors per request with exponential backoff:
#: DynamoDB from 50 ms doubling (11 retries ≈ 100 s of patience), S3 from up to 1 s doubling.
DYNAMODB_RETRIES = 11
S3_RETRIES = 8


def new_session(region: str, *, access_key: str | None = None, secret_key: str | None = None
                ) -> boto3.session.Session:
    """A session for ``region``; explicit keys only when given (else the default credential chain)."""
    return boto3.session.Session(region_name=region, aws_access_key_id=access_key,
                                 aws_secret_access_key=secret_key)


def make_clients(
    region: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    max_pool: int = 32,
    session: boto3.session.Session | None = None,
) -> AwsClients:
    """Build the DynamoDB and S3 clients on ``session`` (default: a new one, :func:`new_session`).
    Endpoints come from ``AWS_ENDPOINT_URL_*`` (boto3 reads them)."""
    session = session or new_session(region, access_key=access_key, secret_key=secret_key)
    common: dict[str, Any] = {"max_pool_connections": max_pool, "connect_timeout": 5, "read_timeout": 30,
                              "tcp_keepalive": True}
    # Parameter validation costs ~15% of a busy run's CPU; our requests are built by code, not users.
    dynamodb = session.client("dynamodb", config=Config(
        parameter_validation=False, retries={"mode": "legacy", "max_attempts": DYNAMODB_RETRIES}, **common))
    s3 = session.client("s3", config=Config(
        s3={"addressing_style": "path"}, retries={"mode": "legacy", "max_attempts": S3_RETRIES}, **common))
    return AwsClients(dynamodb=dynamodb, s3=s3, session=session)
