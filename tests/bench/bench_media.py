"""Overhead of the media and dataset actions over running the same work directly (issue 6).

Run: ``python -m tests.bench.bench_media [--repeat N] [--seconds S] [--rows R]``. Starts the local
stack (DynamoDB Local + SeaweedFS), then, in the same run and interleaved:

* ``vendor.ffmpeg.convert`` of a generated 60 s 720p clip (download from S3, probe, encode, upload)
  vs. the identical ffmpeg command run directly on the local file — target ratio ≤ 1.10;
* ``sys.dataset.query`` (DuckDB reading the source while it downloads, sandboxed, result uploaded)
  vs. the same SQL in DuckDB Python on the local file — target ratio ≤ 1.2. A third run, the
  *floor*, is the direct query while the same object is fetched from the store at the same time:
  a bound no worker beats while the store shares its CPUs. The CPU time SeaweedFS spends serving
  the object (from /proc) and when a plain GET delivers its first MB and its last byte are printed
  with it.

Medians of N runs each; prints a small table and a line explaining the dataset figures.
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

from feaas.actions.base import ActionContext
from feaas.actions.context import UserStorage
from feaas.dao import make_clients
from src.actions.dataset import ACTIONS as DATASET_ACTIONS
from src.actions.ffmpeg import ACTIONS as FFMPEG_ACTIONS
from src.actions.ffmpeg import demuxers
from src.actions.ffmpeg.probing import probe
from src.actions.ffmpeg.process import ffmpeg_command, input_args
from src.actions.ffmpeg.transcode import convert_args
from tests.bench.common import BUCKET, bench_stack, make_dao, timed
from tests.support.scripts import NAMESPACE

SQL = ("SELECT grp, count(*) AS n, sum(value) AS total, avg(value) AS mean, max(label) AS top "
       "FROM {table} GROUP BY grp ORDER BY grp")


def paired(action: Callable[[], object], direct: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median times of ``action`` and ``direct``, run alternately so machine noise hits both alike."""
    a_times, d_times = [], []
    for _ in range(repeat):
        a_times.append(timed(action)[0])
        d_times.append(timed(direct)[0])
    return statistics.median(a_times), statistics.median(d_times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_clip(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(path)],
        check=True, timeout=600,
    )


def make_csv(path: Path, rows: int) -> None:
    with open(path, "w") as fh:
        fh.write("id,grp,value,label\n")
        step = 100_000
        fh.writelines("".join(f"{i},{i % 97},{(i * 13) % 1000},label{i % 5003}\n"
                              for i in range(start, min(rows, start + step)))
                      for start in range(0, rows, step))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="length of the test clip")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the test CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import duckdb

    with bench_stack() as stack, tempfile.TemporaryDirectory(prefix="bench-media-") as tmp_name:
        tmp = Path(tmp_name)
        dao = make_dao()
        clients = make_clients(stack.region)
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
        source = input_args(clip, probe(clip, demuxers.ANY_MEDIA))  # opened exactly as the action opens it
        direct_cmd = ffmpeg_command(convert_args(source, direct_out, ".mp4", has_video=True, has_audio=True))

        table = tmp / "sales.csv"
        make_csv(table, args.rows)
        table_key = f"{NAMESPACE}bench/sales.csv"
        storage.upload(table, table_key)
        query = next(a for a in DATASET_ACTIONS if a.id == "sys.dataset.query")

        def direct_query() -> None:  # as many DuckDB threads as the action gets: one per usable CPU
            con = duckdb.connect(":memory:", config={"threads": len(os.sched_getaffinity(0))})
            con.execute(f"COPY ({SQL.format(table=f'read_csv({chr(39)}{table}{chr(39)})')}) "
                        f"TO '{tmp / 'direct.csv'}' (FORMAT csv, HEADER true)")
            con.close()

        results: list[tuple[str, float, float, float]] = []
        action_s, direct_s = paired(
            lambda: convert.run(ctx(), {"key": clip_key, "format": "mp4", "dest_key": "", "timeout_s": 0}),
            lambda: subprocess.run(direct_cmd, check=True, stdout=subprocess.DEVNULL, timeout=3600),
            args.repeat)
        results.append((f"convert {args.seconds} s 720p → mp4", action_s, direct_s, 1.10))

        # Dataset: every repetition runs, in turn, the action, the direct DuckDB query, and the
        # floor (the direct query while the object is fetched from the store at the same time).
        def run_action() -> None:
            query.run(ctx(), {"sources": [table_key], "sql": SQL.format(table="sales"),
                              "dest_key": f"{NAMESPACE}bench/summary.csv", "format": ""})

        def fetch() -> None:
            for _ in clients.s3.get_object(Bucket=BUCKET, Key=table_key)["Body"].iter_chunks(1024 * 1024):
                pass

        def floor() -> None:
            fetcher = threading.Thread(target=fetch)
            fetcher.start()
            direct_query()
            fetcher.join()

        def timed_fetch() -> tuple[float, float, float]:
            """A plain GET of the source: seconds until its first MB, half its bytes, its last byte."""
            started, got, first, half = time.perf_counter(), 0, 0.0, 0.0
            for chunk in clients.s3.get_object(Bucket=BUCKET, Key=table_key)["Body"].iter_chunks(1024 * 1024):
                got += len(chunk)
                first = first or time.perf_counter() - started
                half = half or (time.perf_counter() - started if 2 * got >= size else 0.0)
            return first, half, time.perf_counter() - started

        size = table.stat().st_size
        totals, directs, floors, store_cpu, arrivals = [], [], [], [], []
        for _ in range(args.repeat):
            before = cpu_seconds(stack.s3_pid)
            totals.append(timed(run_action)[0])
            store_cpu.append(cpu_seconds(stack.s3_pid) - before)
            directs.append(timed(direct_query)[0])
            floors.append(timed(floor)[0])
            arrivals.append(timed_fetch())
        med = statistics.median
        results.append((f"dataset query {args.rows:,} rows", med(totals), med(directs), 1.2))
        results.append(("  floor: direct + concurrent fetch", med(floors), med(directs), 0.0))
        results.append(("  action vs. that floor", med(totals), med(floors), 0.0))
        size_mb = size / 1e6
        first, half, last = (med(a[i] for a in arrivals) for i in range(3))
        explain = (
            f"dataset: DuckDB reads the {size_mb:.0f} MB source while it downloads. Here the store is "
            f"SeaweedFS on the same two cores: it gzips text objects and un-gzips every read, "
            f"{med(store_cpu):.2f} CPU-s per action run taken from the cores the query runs on; a plain "
            f"GET delivers its first MB after {first:.2f} s, half its bytes "
            f"after {half:.2f} s, the last after {last:.2f} s — what a reader can overlap is bounded by "
            "that. S3 serves from its own machines."
        )

    print(f"{'benchmark':<40} {'action s':>9} {'direct s':>9} {'ratio':>6} {'target':>7}")
    for name, action_s, direct_s, target in results:
        ratio = action_s / direct_s
        bound = "≤" + format(target, ".2f")
        verdict = f"{bound:>7} {'ok' if ratio <= target else 'OVER'}" if target else ""
        print(f"{name:<40} {action_s:9.2f} {direct_s:9.2f} {ratio:6.2f} {verdict}")
    print(explain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
