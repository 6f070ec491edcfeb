"""Prefetch: objects fetched in ordered ranged parts and read while they arrive (real SeaweedFS)."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.context import UserStorage
from feaas.dao import Blobs, make_clients
from feaas.dao.blobs import BlobNotFound
from feaas.errors import NamespaceViolation
from src.actions.dataset.prefetch import Prefetch
from tests.conftest import BUCKET, REGION
from tests.support.faultproxy import FaultProxy
from tests.support.scripts import NAMESPACE

PART = 64 * 1024


@pytest.fixture
def prefix() -> str:
    return f"{NAMESPACE}prefetch-{uuid.uuid4().hex[:10]}/"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reads_return_the_exact_bytes_of_every_object(user_storage, tmp_path, prefix):
    contents = [b"", b"x", os.urandom(2 * PART), os.urandom(5 * PART + 123)]
    keys = [f"{prefix}{n}.bin" for n in range(len(contents))]
    for key, data in zip(keys, contents, strict=True):
        user_storage.put_bytes(key, data)
    progress: list[float] = []
    objects = [(key, tmp_path / str(n)) for n, key in enumerate(keys)]
    with Prefetch(user_storage, objects, threading.Event(), on_progress=progress.append, part_size=PART,
                  concurrency=3) as prefetch:
        rng = random.Random(7)
        for n, data in enumerate(contents):
            assert prefetch.size(n) == len(data)
            for _ in range(25):  # any offset and length, including past the end
                offset, length = rng.randrange(len(data) + 10), rng.randrange(3 * PART)
                assert prefetch.read(n, offset, length) == data[offset:offset + length]
            assert prefetch.read(n, 0, len(data) + 1) == data
        assert prefetch.error is None
    assert max(progress) == pytest.approx(1.0)
    assert len(progress) == 1 + 2 + 6  # one report per part


def test_a_missing_object_is_reported_at_once_and_no_file_stays_open(user_storage, tmp_path, prefix):
    user_storage.put_bytes(f"{prefix}here.bin", b"data")
    before = _open_fds()
    with pytest.raises(BlobNotFound):
        Prefetch(user_storage, [(f"{prefix}here.bin", tmp_path / "0"), (f"{prefix}gone.bin", tmp_path / "1")],
                 threading.Event())
    assert _open_fds() == before


class _StatsMeetInPairs:
    """The real storage, except that each object's stat waits until another stat is under way too:
    asked for one after another, the first of them never returns (the barrier breaks)."""

    def __init__(self, inner: UserStorage) -> None:
        self._inner = inner
        self._barrier = threading.Barrier(2, timeout=10)

    def stat(self, key: str) -> Any:
        self._barrier.wait()
        return self._inner.stat(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_the_objects_are_looked_up_in_parallel(user_storage, tmp_path, prefix):
    contents = [os.urandom(PART + n) for n in range(4)]
    keys = [f"{prefix}{n}.bin" for n in range(len(contents))]
    for key, data in zip(keys, contents, strict=True):
        user_storage.put_bytes(key, data)
    objects = [(key, tmp_path / str(n)) for n, key in enumerate(keys)]
    with Prefetch(_StatsMeetInPairs(user_storage), objects, threading.Event(),  # type: ignore[arg-type]
                  part_size=PART, concurrency=2) as prefetch:
        assert [prefetch.read(n, 0, len(data)) for n, data in enumerate(contents)] == contents


class _ReplacedOnFirstRead:
    """The real storage, except that the object is overwritten just before its first part is read."""

    def __init__(self, inner: UserStorage, key: str) -> None:
        self._inner, self._key, self._done = inner, key, False

    def read_range(self, key: str, start: int, end: int, *, etag: str | None = None) -> Any:
        if not self._done:
            self._done = True
            self._inner.put_bytes(self._key, os.urandom(4 * PART))
        return self._inner.read_range(key, start, end, etag=etag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_an_object_replaced_mid_way_fails_instead_of_mixing_versions(user_storage, tmp_path, prefix):
    key = f"{prefix}moving.bin"
    user_storage.put_bytes(key, os.urandom(4 * PART))
    storage = _ReplacedOnFirstRead(user_storage, key)
    with Prefetch(storage, [(key, tmp_path / "0")], threading.Event(), part_size=PART,  # type: ignore[arg-type]
                  concurrency=1) as prefetch:
        with pytest.raises(OSError, match="changed while it was read") as info:
            prefetch.read(0, 0, 4 * PART)
        assert info.value.errno == errno.EIO
        assert "changed while it was read" in str(prefetch.error)


def test_cancel_stops_waiting_readers_and_the_fetch(user_storage, tmp_path, prefix):
    key = f"{prefix}big.bin"
    user_storage.put_bytes(key, os.urandom(64 * PART))
    cancel = threading.Event()
    prefetch = Prefetch(user_storage, [(key, tmp_path / "0")], cancel, part_size=PART, concurrency=1)
    cancel.set()
    with pytest.raises(OSError) as info:
        prefetch.read(0, 64 * PART - 1, 1)
    assert info.value.errno == errno.ECANCELED
    started = time.monotonic()
    prefetch.close()
    assert time.monotonic() - started < 2.0
    assert prefetch.error is None


def test_a_download_cut_mid_body_resumes_and_stays_exact(stack, tmp_path, prefix, monkeypatch, dao):
    data = os.urandom(16 * PART + 7)
    key = f"{prefix}cut.bin"
    dao.blobs.put_bytes(key, data)
    # One part at a time, so the seeded faults fall on the same requests in every run: two cuts in a
    # row at most, each resumed where it broke (four in a row without progress would fail the read).
    with FaultProxy(stack.s3_port, cut_body=0.25, seed=12) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        storage = UserStorage(Blobs(make_clients(REGION).s3, BUCKET), dao.docs, NAMESPACE)
        with Prefetch(storage, [(key, tmp_path / "0")], threading.Event(), part_size=PART,
                      concurrency=1) as prefetch:
            assert prefetch.read(0, 0, len(data)) == data
    assert proxy.counts.cut_bodies >= 2, proxy.counts
    assert (tmp_path / "0").read_bytes() == data


def test_reads_wait_for_their_bytes_while_later_parts_arrive(user_storage, tmp_path, prefix):
    data = os.urandom(32 * PART)
    key = f"{prefix}ordered.bin"
    user_storage.put_bytes(key, data)
    got: dict[int, bytes] = {}

    def reader(n: int) -> None:
        got[n] = prefetch.read(0, n * 4 * PART, 4 * PART)

    with Prefetch(user_storage, [(key, Path(tmp_path / "0"))], threading.Event(), part_size=PART,
                  concurrency=2) as prefetch:
        threads = [threading.Thread(target=reader, args=(n,)) for n in reversed(range(8))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert b"".join(got[n] for n in range(8)) == data


def test_wait_ready_reports_every_step_of_the_download_until_it_is_whole(user_storage, tmp_path, prefix):
    data = os.urandom(6 * PART + 5)
    key = f"{prefix}steps.bin"
    user_storage.put_bytes(key, data)
    seen, steps = [0], []
    with Prefetch(user_storage, [(key, Path(tmp_path / "0"))], threading.Event(), part_size=PART,
                  concurrency=2) as prefetch:
        while seen != [len(data)]:
            now = prefetch.wait_ready(seen, 30)
            assert now != seen, "woke without news before its timeout"
            assert now[0] > seen[0]
            steps.append(now[0])
            seen = now
        # nothing more will come: it waits out its timeout and says the same
        assert prefetch.wait_ready(seen, 0.05) == [len(data)]
    assert steps[-1] == len(data) and steps == sorted(steps)
    assert prefetch.wait_ready([0], 0) == [len(data)]  # stopped: it answers at once


def test_ranges_and_stats_outside_the_namespace_are_refused_before_any_request(user_storage):
    for key in ("plus_example_com/bob@example.com/x.csv", f"{NAMESPACE}../bob@example.com/x.csv"):
        with pytest.raises(NamespaceViolation):
            user_storage.read_range(key, 0, 10)
        with pytest.raises(NamespaceViolation):
            user_storage.stat(key)
