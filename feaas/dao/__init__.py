"""The only code that talks to DynamoDB and S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from feaas.dao.blobs import BlobNotFound, Blobs
from feaas.dao.clients import AwsClients, make_clients
from feaas.dao.docs import ConditionFailed, Documents
from feaas.dao.expressions import Update
from feaas.dao.preflight import check_storage
from feaas.dao.running import RunningIndex
from feaas.dao.streams import Streams

if TYPE_CHECKING:
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
        """
        key, secret = settings.access_key, settings.secret_key
        clients = make_clients(settings.region, access_key=key.get_secret_value() if key else None,
                               secret_key=secret.get_secret_value() if secret else None,
                               max_pool=settings.concurrency * 2 + 8)
        docs = Documents(clients.dynamodb, settings.dynamo_table, settings.dynamo_key_attribute,
                         settings.dynamo_owner_index)
        check_storage(
            clients.session,
            table=settings.dynamo_table,
            streams_table=settings.dynamo_streams_table,
            bucket=settings.primary_bucket,
        )
        return cls(
            docs=docs,
            streams=Streams(clients.dynamodb, settings.dynamo_streams_table),
            blobs=Blobs(clients.s3, settings.primary_bucket),
            running=RunningIndex(clients.dynamodb, settings.dynamo_streams_table),
        )
