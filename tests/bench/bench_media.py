"""Overhead of the media and dataset actions over running the same work directly (issue 6).

Run: ``python -m tests.bench.bench_media [--repeat N] [--seconds S] [--rows R]``. Starts the local
stack (DynamoDB Local + SeaweedFS), then, in the same run and interleaved:

* ``vendor.ffmpeg.convert`` of a generated 60 s 720p clip (download from S3, probe, encode, upload)
  vs. the identical ffmpeg command run directly on the local file — target ratio ≤ 1.10;
* ``sys.dataset.query`` (download, sandboxed DuckDB, upload) vs. the same SQL in DuckDB Python on
  the local file — target ratio ≤ 1.2. The action's storage is wrapped so the time it spends
  downloading its source is measured inside the very same runs; the table shows the end-to-end
  ratio and the ratio without that download (the query itself), plus the bare download with the
  worker's TransferConfig and with a larger one, to show what transfer tuning could win.

Medians of N runs each; prints a small table and a line explaining the dataset gap.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from feaas.actions.base import ActionContext
from feaas.actions.context import UserStorage
from feaas.dao import Blobs, Dao, Documents, Streams, make_clients
from src.actions.dataset import ACTIONS as DATASET_ACTIONS
from src.actions.ffmpeg import ACTIONS as FFMPEG_ACTIONS
from src.actions.ffmpeg.runner import ffmpeg_command
from src.actions.ffmpeg.transcode import convert_args
from tests.support import localstack
from tests.support.scripts import NAMESPACE

TABLE, STREAMS_TABLE, BUCKET, REGION = "bench-docs", "bench-streams", "bench-bucket", "us-east-1"
SQL = ("SELECT grp, count(*) AS n, sum(value) AS total, avg(value) AS mean, max(label) AS top "
       "FROM {table} GROUP BY grp ORDER BY grp")


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired(action: Callable[[], object], direct: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median times of ``action`` and ``direct``, run alternately so machine noise hits both alike."""
    a_times, d_times = [], []
    for _ in range(repeat):
        a_times.append(median_time(action, 1))
        d_times.append(median_time(direct, 1))
    return statistics.median(a_times), statistics.median(d_times)


class TimedStorage:
    """The user's storage, timing what the action spends in ``download`` (all else is delegated)."""

    def __init__(self, inner: UserStorage) -> None:
        self._inner = inner
        self.download_s = 0.0

    def download(self, key: str, path: Path) -> None:
        started = time.perf_counter()
        try:
            self._inner.download(key, path)
        finally:
            self.download_s += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


#: A larger transfer than the worker's (16 MB parts × 4 threads, 256 KB reads), for comparison.
BIG_TRANSFER = TransferConfig(multipart_threshold=32 * 1024 * 1024, multipart_chunksize=32 * 1024 * 1024,
                              max_concurrency=8, io_chunksize=1024 * 1024, use_threads=True)


def make_clip(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=600,
    )


def make_csv(path: Path, rows: int) -> None:
    with open(path, "w") as fh:
        fh.write("id,grp,value,label\n")
        fh.writelines("".join(f"{i},{i % 97},{(i * 13) % 1000},label{i % 5003}\n"
                             for i in range(start, min(rows, start + 100_000))) for start in range(0, rows, 100_000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="length of the test clip")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the test CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import duckdb

    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp_name:
        tmp = Path(tmp_name)
        stack = localstack.start(tmp / "stack")
        try:
            os.environ.update(stack.env)
            localstack.create_resources(stack.env, table=TABLE, streams_table=STREAMS_TABLE, bucket=BUCKET)
            clients = make_clients(REGION)
            dao = Dao(docs=Documents(clients.dynamodb, TABLE, "object_id", "ownerIndex"),
                      streams=Streams(clients.dynamodb, STREAMS_TABLE), blobs=Blobs(clients.s3, BUCKET))
            storage = UserStorage(dao.blobs, dao.docs, NAMESPACE)

            def ctx() -> ActionContext:
                work = Path(tempfile.mkdtemp(dir=tmp))
                return ActionContext(storage=storage, tmp_dir=work, cancel=threading.Event(),
                                     log=logging.getLogger("bench"))

            clip = tmp / "clip.mkv"
            make_clip(clip, args.seconds)
            clip_key = f"{NAMESPACE}bench/clip.mkv"
            storage.upload(clip, clip_key)
            convert = next(a for a in FFMPEG_ACTIONS if a.id == "vendor.ffmpeg.convert")
            direct_out = tmp / "direct.mp4"
            direct_cmd = ffmpeg_command(convert_args(clip, direct_out, ".mp4", has_video=True, has_audio=True))

            table = tmp / "sales.csv"
            make_csv(table, args.rows)
            table_key = f"{NAMESPACE}bench/sales.csv"
            storage.upload(table, table_key)
            query = next(a for a in DATASET_ACTIONS if a.id == "sys.dataset.query")

            def direct_query() -> None:
                con = duckdb.connect(":memory:")
                con.execute(f"COPY ({SQL.format(table=f'read_csv({chr(39)}{table}{chr(39)})')}) "
                            f"TO '{tmp / 'direct.csv'}' (FORMAT csv, HEADER true)")
                con.close()

            results: list[tuple[str, float, float, float]] = []
            action_s, direct_s = paired(
                lambda: convert.run(ctx(), {"key": clip_key, "format": "mp4", "dest_key": "", "timeout_s": 0}),
                lambda: subprocess.run(direct_cmd, check=True, stdout=subprocess.DEVNULL, timeout=3600),
                args.repeat)
            results.append((f"convert {args.seconds} s 720p → mp4", action_s, direct_s, 1.10))

            # Dataset: every repetition runs, in turn, the action (its download timed inside it), the
            # direct DuckDB query, and the bare download with the worker's and a larger TransferConfig.
            totals, queries, downloads, directs, bare, big = [], [], [], [], [], []
            for _ in range(args.repeat):
                timed_storage = TimedStorage(storage)
                work = Path(tempfile.mkdtemp(dir=tmp))
                run_ctx = ActionContext(storage=timed_storage, tmp_dir=work,  # type: ignore[arg-type]
                                        cancel=threading.Event(), log=logging.getLogger("bench"))
                started = time.perf_counter()
                query.run(run_ctx, {"sources": [table_key], "sql": SQL.format(table="sales"),
                                    "dest_key": f"{NAMESPACE}bench/summary.csv", "format": ""})
                total = time.perf_counter() - started
                totals.append(total)
                downloads.append(timed_storage.download_s)
                queries.append(total - timed_storage.download_s)
                directs.append(median_time(direct_query, 1))
                bare.append(median_time(lambda: storage.download(table_key, tmp / "fetched.csv"), 1))
                big.append(median_time(lambda: clients.s3.download_file(BUCKET, table_key, str(tmp / "fetched.csv"),
                                                                        Config=BIG_TRANSFER), 1))
            med = statistics.median
            results.append((f"dataset query {args.rows:,} rows", med(totals), med(directs), 1.2))
            results.append(("  same runs, minus their download", med(queries), med(directs), 1.2))
            size_mb = table.stat().st_size / 1e6
            explain = (
                f"why: the action must first fetch its {size_mb:.0f} MB source from S3 "
                f"({med(downloads):.2f} s in those runs, {size_mb / med(downloads):.0f} MB/s, "
                f"{100 * med(downloads) / med(totals):.0f}% of the action); the direct DuckDB run reads a local "
                f"file. Bare download: {med(bare):.2f} s with the worker's TransferConfig (16 MB × 4), "
                f"{med(big):.2f} s with 32 MB × 8, 1 MB reads. The query itself costs "
                f"{med(queries) / med(directs):.2f}× the direct one."
            )
        finally:
            localstack.stop(stack)

    print(f"{'benchmark':<34} {'action s':>9} {'direct s':>9} {'ratio':>6} {'target':>7}")
    for name, action_s, direct_s, target in results:
        ratio = action_s / direct_s
        flag = "ok" if ratio <= target else "OVER"
        print(f"{name:<34} {action_s:9.2f} {direct_s:9.2f} {ratio:6.2f} {'≤' + format(target, '.2f'):>7} {flag}")
    print(explain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
