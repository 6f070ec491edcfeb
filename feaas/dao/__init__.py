"""The only code that talks to DynamoDB and S3."""

from __future__ import annotations

from dataclasses import dataclass

from feaas.dao.blobs import BlobNotFound, Blobs
from feaas.dao.clients import AwsClients, make_clients
from feaas.dao.docs import ConditionFailed, Documents, Update
from feaas.dao.streams import Streams

__all__ = [
    "AwsClients",
    "BlobNotFound",
    "Blobs",
    "ConditionFailed",
    "Dao",
    "Documents",
    "Streams",
    "Update",
    "make_clients",
]


@dataclass(frozen=True)
class Dao:
    docs: Documents
    streams: Streams
    blobs: Blobs
