"""The bucket: small objects in memory, large ones streamed to and from files (multipart)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.errors import error_code, storage_error
from feaas.errors import NotFound, StorageError, WorkerError

if TYPE_CHECKING:  # the stubs are a dev dependency; at run time this is a plain boto3 client
    from mypy_boto3_s3 import S3Client

_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024,
                           max_concurrency=4, use_threads=True)


#: Chunks of a streamed read: large enough to keep per-chunk costs small, small enough to stop soon.
_READ_CHUNK = 1024 * 1024
#: A ranged read whose connection breaks mid-body asks again for the rest, at most this often.
_READ_ATTEMPTS = 4


@dataclass(frozen=True)
class BlobStat:
    size: int
    etag: str


class BlobNotFound(NotFound):
    """No object at that key (``key``, ``args[0]``)."""

    template = "no object at {name!r}"

    @property
    def key(self) -> str:
        return self.name


class TransferCancelled(WorkerError):
    """A download stopped because its cancel event was set."""


def _missing(exc: ClientError) -> bool:
    code = error_code(exc)
    return code in ("NoSuchKey", "404", "NotFound")


class Blobs:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @contextmanager
    def _translated(self, what: str, key: str) -> Iterator[None]:
        """Turn botocore/s3transfer failures into :class:`BlobNotFound` or one readable
        :class:`StorageError` (naming the bucket when it is the bucket that is missing)."""
        try:
            yield
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            err = storage_error(exc, f"{what} {key}")
            if error_code(exc) == "NoSuchBucket":
                err = StorageError(f"{err} (bucket {self.bucket!r})")
            raise err from exc
        except (
            BotoCoreError,
            S3UploadFailedError,
        ) as exc:  # s3transfer wraps upload failures in its own error
            raise storage_error(exc, f"{what} {key}") from exc

    def get_bytes(self, key: str) -> bytes:
        with self._translated("reading", key):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                data: bytes = body.read()
                return data

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  metadata: Mapping[str, str] | None = None) -> None:
        """Store ``data`` at ``key``; ``metadata`` becomes the object's user metadata (ASCII)."""
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if metadata:
            extra["Metadata"] = dict(metadata)
        with self._translated("writing", key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def download(self, key: str, path: Path, *, cancel: threading.Event | None = None) -> None:
        """Stream an object to a local file (ranged, parallel parts for large objects).

        With ``cancel``, the transfer stops soon after the event is set: :class:`TransferCancelled`."""

        def check(_bytes: int) -> None:
            if cancel is not None and cancel.is_set():
                raise TransferCancelled(key)

        with self._translated("downloading", key):
            self.client.download_file(self.bucket, key, str(path), Config=_TRANSFER, Callback=check)

    def upload(self, path: Path, key: str, content_type: str | None = None) -> None:
        """Stream a local file to the bucket (multipart above 16 MB). The object appears only when
        complete."""
        extra = {"ContentType": content_type} if content_type else None
        with self._translated("uploading", key):
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Config=_TRANSFER)

    def copy(self, src_key: str, dest_key: str) -> None:
        with self._translated("copying", src_key):
            self.client.copy({"Bucket": self.bucket, "Key": src_key}, self.bucket, dest_key, Config=_TRANSFER)

    def read_range(self, key: str, start: int, end: int, *, etag: str | None = None) -> Generator[bytes]:
        """Bytes ``start`` to ``end - 1`` of an object, streamed in chunks of up to 1 MB.

        A connection that breaks mid-body is asked again for the rest (botocore retries only the
        request itself). With ``etag``, a changed object fails the read instead of mixing versions.
        """
        position, breaks = start, 0
        condition: dict[str, Any] = {"IfMatch": etag} if etag else {}
        with self._translated("reading", key):
            while position < end:
                try:
                    response = self.client.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={position}-{end - 1}", **condition
                    )
                except ClientError as exc:
                    if error_code(exc) in ("PreconditionFailed", "412"):
                        raise StorageError(
                            f"reading {key} failed: the object changed while it was read"
                        ) from None
                    raise
                body, resumed_at = response["Body"], position
                try:
                    for chunk in body.iter_chunks(_READ_CHUNK):
                        position += len(chunk)
                        yield chunk
                except BotoCoreError:
                    breaks = 1 if position > resumed_at else breaks + 1  # consecutive breaks without progress
                    if breaks >= _READ_ATTEMPTS:
                        raise
                    time.sleep(0.05 * 2**breaks)
                    continue
                finally:
                    body.close()
                if position < end:
                    raise StorageError(
                        f"reading {key} failed: the object ended at byte {position}, not {end}"
                    )

    def stat(self, key: str) -> BlobStat:
        """Size and ETag; raises :class:`BlobNotFound` when there is no object."""
        with self._translated("reading", key):
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            return BlobStat(size=int(head["ContentLength"]), etag=str(head.get("ETag", "")))

    def size(self, key: str) -> int:
        """Size in bytes; raises :class:`BlobNotFound` when there is no object."""
        return self.stat(key).size

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except BlobNotFound:
            return False

    def delete(self, key: str) -> None:
        with self._translated("deleting", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def list_keys(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        """Every key under ``prefix`` (after ``start_after``), page by page."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._translated("listing", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, StartAfter=start_after or ""):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
