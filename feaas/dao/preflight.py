"""One quick look at the tables and the bucket before the claim (issue 11, SPEC §8.4).

Without it a stopped local stack or a wrong endpoint meant 100 s of botocore's patient retries and
then an "internal error"; a wrong table or bucket name surfaced only mid-run. The check uses
clients of its own that fail fast, inside a budget of a few seconds; the run's clients keep their
patience for outages that start later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from feaas.dao.errors import error_code
from feaas.errors import ConfigError, StorageUnreachable

BUDGET_S = 8.0
_FAST = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1},
               s3={"addressing_style": "path"})
_MISSING = {"ResourceNotFoundException", "NoSuchBucket", "404", "NotFound"}


@contextmanager
def checking_storage(session: boto3.session.Session, *, table: str, streams_table: str | None,
                     bucket: str | None, budget_s: float = BUDGET_S) -> Iterator[None]:
    """Check the tables and the bucket while the caller goes on: the requests are in flight during
    the ``with`` block (the worker builds its own clients meanwhile), and leaving it waits for them.

    Raises, on leaving, :class:`StorageUnreachable` when an endpoint cannot be reached within
    ``budget_s``, and :class:`ConfigError` when a table or the bucket does not exist. Other refusals
    (no permission to describe, throttling) are left for the run itself to meet. ``streams_table`` or
    ``bucket`` ``None``: a run mode that never uses it (REGISTER_ACTIONS, the sweeper)."""
    deadline = time.monotonic() + budget_s
    workers = 1 + (streams_table is not None) + (bucket is not None)
    # The checks run at once: the start waits for the slowest, not for their sum (issue 14).
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preflight") as pool:
        dynamodb = session.client("dynamodb", config=_FAST)
        futures = [pool.submit(_check_one, dynamodb, f"DYNAMO_TABLE={table!r}",
                               lambda: dynamodb.describe_table(TableName=table), deadline)]
        if streams_table is not None:  # None: REGISTER_ACTIONS, which uses no stream
            futures.append(pool.submit(_check_one, dynamodb, f"DYNAMO_STREAMS_TABLE={streams_table!r}",
                                       lambda: dynamodb.describe_table(TableName=streams_table), deadline))
        if bucket is not None:  # None: the sweeper, which reads no file
            s3 = session.client("s3", config=_FAST)  # made while DynamoDB answers
            futures.append(pool.submit(_check_one, s3, f"PRIMARY_BUCKET={bucket!r}",
                                       lambda: s3.head_bucket(Bucket=bucket), deadline))
        yield
    for future in futures:  # in order, so the first setting's problem is the one reported
        future.result()


def _check_one(client: BaseClient, setting: str, call: Callable[[], object], deadline: float) -> None:
    service = client.meta.service_model.service_name
    while True:
        try:
            call()
            return
        except ClientError as exc:
            code = error_code(exc)
            if code in _MISSING:
                raise ConfigError(
                    f"{setting} does not exist at {client.meta.endpoint_url} "
                    f"({code}): check the name and the region"
                ) from None
            if not _transient(exc) or time.monotonic() >= deadline:
                return  # e.g. AccessDenied on DescribeTable: the run's own requests will tell
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise StorageUnreachable(
                    f"cannot reach {service} at {client.meta.endpoint_url}: {exc}"
                ) from None
        except BotoCoreError:  # a reset or a read timeout: the endpoint answers, the run will retry
            if time.monotonic() >= deadline:
                return
        time.sleep(0.25)


def _transient(exc: ClientError) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = error_code(exc)
    return status >= 500 or status == 429 or "Throttl" in code or code == "RequestLimitExceeded"
