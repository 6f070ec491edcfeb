"""The only code that talks to DynamoDB and S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from feaas.dao.blobs import BlobNotFound, Blobs
from feaas.dao.clients import AwsClients, make_clients, new_session
from feaas.dao.docs import ConditionFailed, Documents
from feaas.dao.expressions import Update
from feaas.dao.preflight import checking_storage
from feaas.dao.running import RunningIndex
from feaas.dao.streams import Streams
from feaas.settings import MAX_CONCURRENCY

if TYPE_CHECKING:
    from pydantic import SecretStr

    from feaas.settings import Settings

__all__ = [
    "AwsClients",
    "BlobNotFound",
    "Blobs",
    "ConditionFailed",
    "Dao",
    "Documents",
    "RunningIndex",
    "Streams",
    "Update",
    "checked_clients",
    "make_clients",
]


@dataclass(frozen=True)
class Dao:
    docs: Documents
    streams: Streams
    blobs: Blobs
    running: RunningIndex | None = None  # the index of held jobs (SPEC §8.3); None in some tests

    @classmethod
    def connect(cls, settings: Settings) -> Dao:
        """Clients and table/bucket handles as configured (explicit keys only when given), after a quick
        check that the tables and the bucket exist and answer.

        Raises :class:`StorageUnreachable` (exit 69) or :class:`ConfigError` (a missing table or bucket).
        The connection pool fits the most items a live ``concurrency`` control may put in flight
        (connections open only when used).
        """
        clients = checked_clients(settings.region, settings.access_key, settings.secret_key,
                                  table=settings.dynamo_table, streams_table=settings.dynamo_streams_table,
                                  bucket=settings.primary_bucket, max_pool=MAX_CONCURRENCY * 2 + 8)
        docs = Documents(clients.dynamodb, settings.dynamo_table, settings.dynamo_key_attribute,
                         settings.dynamo_owner_index)
        return cls(
            docs=docs,
            streams=Streams(clients.dynamodb, settings.dynamo_streams_table),
            blobs=Blobs(clients.s3, settings.primary_bucket),
            running=RunningIndex(clients.dynamodb, settings.dynamo_streams_table),
        )


def checked_clients(region: str, access_key: SecretStr | None, secret_key: SecretStr | None, *, table: str,
                    streams_table: str | None, bucket: str | None, max_pool: int = 32) -> AwsClients:
    """Clients (explicit keys only when given) once the named tables and bucket answer.

    Raises :class:`StorageUnreachable` (exit 69) or :class:`ConfigError` (a missing table or bucket).
    """
    session = new_session(region, access_key=access_key.get_secret_value() if access_key else None,
                          secret_key=secret_key.get_secret_value() if secret_key else None)
    with checking_storage(session, table=table, streams_table=streams_table, bucket=bucket):
        # Built while the checks' requests are in flight (issue 14); returned once they passed.
        return make_clients(region, max_pool=max_pool, session=session)
