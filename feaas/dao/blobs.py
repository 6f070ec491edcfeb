"""The bucket: small objects in memory, large ones streamed to and from files (multipart)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.docs import storage_error
from feaas.errors import StorageError

_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024,
                           max_concurrency=4, use_threads=True)


class BlobNotFound(KeyError):
    """No object at that key."""


def _missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


class Blobs:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _error(self, exc: Exception, what: str) -> StorageError:
        """``storage_error`` naming the bucket when it is the bucket that is missing."""
        err = storage_error(exc, what)
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return StorageError(f"{err} (bucket {self.bucket!r})")
        return err

    def get_bytes(self, key: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                data: bytes = body.read()
                return data
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            raise self._error(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {key}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"writing {key}") from exc

    def download(self, key: str, path: Path) -> None:
        """Stream an object to a local file (ranged, parallel parts for large objects)."""
        try:
            self.client.download_file(self.bucket, key, str(path), Config=_TRANSFER)
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            raise self._error(exc, f"downloading {key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"downloading {key}") from exc

    def upload(self, path: Path, key: str, content_type: str | None = None) -> None:
        """Stream a local file to the bucket (multipart above 16 MB). The object appears only when complete."""
        extra = {"ContentType": content_type} if content_type else None
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Config=_TRANSFER)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"uploading {key}") from exc
        except Exception as exc:  # s3transfer wraps failures in its own S3UploadFailedError
            if type(exc).__name__ == "S3UploadFailedError":
                raise self._error(exc, f"uploading {key}") from exc
            raise

    def copy(self, src_key: str, dest_key: str) -> None:
        try:
            self.client.copy({"Bucket": self.bucket, "Key": src_key}, self.bucket, dest_key, Config=_TRANSFER)
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(src_key) from None
            raise self._error(exc, f"copying {src_key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"copying {src_key}") from exc

    def size(self, key: str) -> int:
        """Size in bytes; raises :class:`BlobNotFound` when there is no object."""
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            raise self._error(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {key}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except BlobNotFound:
            return False

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"deleting {key}") from exc

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, page by page."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"listing {prefix}") from exc
