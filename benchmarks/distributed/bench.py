"""Validation on the local executor against a LocalCluster of 2 single-threaded workers (issue 14, point 7a).

    python benchmarks/distributed/bench.py [--rows 200000] [--full] [--no-store] [--partition-mb 4]
        [--source csv|parquet] [--sizes 100000,400000]

A CSV of people is generated in a temporary folder and checked by the validation orchestrator
(required columns, a regex, a numeric range, allowed values), once with no executor (local) and
once with ``executor: dask`` on a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
started for the measurement. Each mode runs in a child process of its own. Printed per mode: rows/s
of the run (the orchestrator's, from the run's metadata) and end to end, the client's peak RSS and,
for dask, each worker's peak RSS; then the speed-up and the efficiency against the physical limit of
this 2-core machine (2x). ``--full`` checks 10,000,000 rows (the issue's size; minutes, and about
0.5 GB of CSV in the temporary folder). The client still judges uniqueness, commits every row to the
run store and writes the sinks, so ``--no-store`` shows how much of the client's share is the store.

``--source parquet`` reads the same people from a Parquet file (written from the CSV in row groups of
about 1 MB, needs ``elspeth-source-parquet``), split by row groups. ``--sizes`` runs only the dask
executor, once per input size, and prints the client's peak RSS for each: the client reads no input
beyond the header (or footer) and holds one partition's results at a time, so it must not grow with
the input (issue 14, point 2: "memory on the client stays flat").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "validation"))
from bench import write_csv  # noqa: E402  # the validation benchmark's people, the same rows

FULL = 10_000_000


def datasource(source: str) -> dict[str, object]:
    if source == "parquet":
        return {"plugin": "parquet", "options": {"path": "people.parquet", "id_column": "id"}}
    return {"plugin": "csv", "options": {"path": "people.csv", "id_column": "id", "encoding": "utf-8"}}


def write_input(folder: Path, rows: int, source: str) -> Path:
    """The people as ``source`` in ``folder``: a CSV, or a Parquet file streamed from it a block at a time."""
    write_csv(folder / "people.csv", rows)
    if source == "csv":
        return folder / "people.csv"
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    reader = pacsv.open_csv(folder / "people.csv", read_options=pacsv.ReadOptions(block_size=1 << 20))
    with pq.ParquetWriter(folder / "people.parquet", reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)  # one row group per 1 MB block of CSV
    (folder / "people.csv").unlink()
    return folder / "people.parquet"


def settings(executor: dict[str, object] | None, store: bool, source: str = "csv") -> str:
    doc: dict[str, object] = {
        "name": "distributed-bench",
        "datasource": datasource(source),
        "orchestrator": {
            "plugin": "validation",
            "options": {
                "required": ["id", "email"],
                "patterns": {"email": r"[^@\s]+@[^@\s]+\.[a-z]+"},
                "ranges": {"age": {"min": 0, "max": 120}},
                "allowed": {"country": ["GB", "FR", "DE", "ES"]},
            },
        },
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "rejected.csv"}}],
        "store": {"enabled": store},
    }
    if executor is not None:
        doc["executor"] = executor
    return json.dumps(doc, indent=2)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, folder: Path, store: bool, partition_mb: float, source: str) -> None:
    """One measured run in this process; prints its figures as JSON."""
    from elspeth import load_registry, load_settings
    from elspeth.engine import run_settings

    executor, client, cluster = None, None, None
    if mode == "dask":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        options = {"address": cluster.scheduler_address, "partition_bytes": int(partition_mb * (1 << 20))}
        executor = {"plugin": "dask", "options": options}
    (folder / "settings.yaml").write_text(settings(executor, store, source), encoding="utf-8")
    t0 = time.perf_counter()
    result = run_settings(load_settings(folder / "settings.yaml"), load_registry())
    wall = time.perf_counter() - t0
    figures = {
        "rows": result.metadata.rows,
        "wall_s": round(wall, 2),
        "run_rows_per_s": result.metadata.extra["timings"]["rows_per_s"],
        "client_peak_mb": round(peak_mb(), 1),
    }
    if client is not None:
        workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        figures["worker_peak_mb"] = sorted(round(v, 1) for v in workers.values())
        client.close()
        cluster.close()
    print(json.dumps(figures))


def measure(mode: str, folder: Path, store: bool, partition_mb: float, source: str = "csv") -> dict[str, object]:
    args = [sys.executable, str(HERE), "--child", mode, "--folder", str(folder), "--partition-mb", str(partition_mb)]
    args += ["--source", source]
    args += [] if store else ["--no-store"]
    done = subprocess.run(
        args, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    if done.returncode:
        sys.exit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--full", action="store_true", help=f"{FULL:,} rows")
    parser.add_argument("--no-store", action="store_true", help="turn the run store off")
    parser.add_argument("--partition-mb", type=float, default=4.0, help="partition size for the dask run")
    parser.add_argument("--source", choices=["csv", "parquet"], default="csv", help="the input's format")
    parser.add_argument("--sizes", help="comma-separated row counts: the dask run's client peak RSS at each")
    parser.add_argument("--child", choices=["local", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, not args.no_store, args.partition_mb, args.source)
        return
    if args.sizes:
        flat_memory([int(n) for n in args.sizes.split(",")], args)
        return
    rows = FULL if args.full else args.rows
    with tempfile.TemporaryDirectory(prefix="elspeth-bench-distributed-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        written = write_input(data, rows, args.source)
        results = {}
        for mode in ("local", "dask"):
            folder = Path(tmp) / mode
            folder.mkdir()
            os.link(written, folder / written.name)
            results[mode] = measure(mode, folder, not args.no_store, args.partition_mb, args.source)
            print(f"{mode:>5}: {json.dumps(results[mode])}")
    local, dask = results["local"], results["dask"]
    speedup = float(local["wall_s"]) / float(dask["wall_s"])  # type: ignore[arg-type]
    print(
        f"rows {rows:,}, store {'off' if args.no_store else 'on'}: end-to-end speed-up {speedup:.2f}x "
        f"(physical limit here 2x; efficiency {speedup / 2:.0%})"
    )


def flat_memory(sizes: list[int], args: argparse.Namespace) -> None:
    """The dask run's client peak RSS at each input size, and its growth from the smallest to the largest."""
    peaks = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="elspeth-bench-distributed-") as tmp:
            written = write_input(Path(tmp), rows, args.source)
            figures = measure("dask", Path(tmp), not args.no_store, args.partition_mb, args.source)
            size_mb = written.stat().st_size / (1 << 20)
        peaks.append(float(figures["client_peak_mb"]))  # type: ignore[arg-type]
        print(f"{rows:>10,} rows ({args.source}, {size_mb:.1f} MB): {json.dumps(figures)}")
    growth = peaks[-1] / peaks[0] - 1
    print(
        f"client peak RSS {peaks[0]:.0f} MB at {sizes[0]:,} rows, {peaks[-1]:.0f} MB at {sizes[-1]:,} rows "
        f"({sizes[-1] / sizes[0]:.0f}x the input): growth {growth:+.0%} (target: flat, within +15%)"
    )


if __name__ == "__main__":
    main()
