"""Rows per second of the validation orchestrator over 1,000,000 records.

    python benchmarks/validation/bench.py [--rows 1000000] [--unique] [--plugin-rule NAME] [--no-store]
                                          [--target ROWS_PER_S]

A CSV of people (id, name, email, age, country; about 6% of rows break a rule) is generated in a
temporary folder and checked by ``python -m elspeth run`` in a child process: required columns, a regex,
a numeric range and allowed values (``--unique`` adds uniqueness of ``id``), valid rows to a ``csv`` sink,
rejects to ``rejects_path``. Printed: rows per second of the whole command (start-up, the datasource's
check of the file, the run and the sinks), of the orchestrator alone (from the run's metadata), and the
child's peak RSS. The command exits with status 1 when the orchestrator alone is slower than the target
(default 5,000 rows/s, a floor well under what the run store's per-row commit allows).

``--plugin-rule NAME`` adds an installed processor plugin as a rule, which takes the concurrent path
(a task per row) instead of the one-loop path. The one-loop path saves the task per row, which is a
small part of a row's cost: the run store (on by default) commits every row as it is judged, and that
commit costs more than the rule checks. Compare both paths with ``--no-store`` to see the loop's own
gain, and turn the store off for the fastest large checks when resume is not needed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from elspeth_testing.measure import run_measured

COUNTRIES = ["GB", "FR", "DE", "ES", "IT"]
TARGET = 5_000.0


def write_csv(path: Path, rows: int) -> int:
    """Write ``rows`` people; return how many break a rule (so the output can be checked)."""
    rng = random.Random(7)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id,name,email,age,country\n")
        for i in range(rows):
            email = f"person{i}@example.org"
            age = str(18 + i % 70)
            country = COUNTRIES[i % 4]
            roll = rng.random()
            if roll < 0.02:
                email = f"person{i}-at-example.org"
            elif roll < 0.04:
                age = "200"
            elif roll < 0.06:
                country = "XX"
            bad += roll < 0.06
            handle.write(f"{i},Person {i},{email},{age},{country}\n")
    return bad


def settings(unique: bool, plugin_rule: str | None, store: bool) -> str:
    options: dict[str, object] = {
        "required": ["id", "name", "email"],
        "patterns": {"email": r"[^@\s]+@[^@\s]+\.[a-z]+"},
        "ranges": {"age": {"min": 0, "max": 130}},
        "allowed": {"country": COUNTRIES[:4]},
        "rejects_path": "rejects.csv",
    }
    if unique:
        options["unique"] = ["id"]
    if plugin_rule:
        options["rules"] = [plugin_rule]
    doc: dict[str, object] = {
        "name": "validation-bench",
        "datasource": {"plugin": "csv", "options": {"path": "people.csv"}},
        "orchestrator": {"plugin": "validation", "options": options},
        "concurrency": 32,
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv"}}, {"plugin": "json"}],
        "output_dir": "out",
    }
    if not store:
        doc["store"] = {"enabled": False}
    return json.dumps(doc, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--unique", action="store_true", help="also check that `id` is unique")
    parser.add_argument("--plugin-rule", metavar="NAME", help="add this processor plugin as a rule")
    parser.add_argument("--no-store", action="store_true", help="turn the run store off")
    parser.add_argument(
        "--target", type=float, default=TARGET, help=f"slowest orchestrator rows/s that passes (default {TARGET:,.0f})"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elspeth-validation-bench-") as tmp:
        folder = Path(tmp)
        bad = write_csv(folder / "people.csv", args.rows)
        text = settings(args.unique, args.plugin_rule, not args.no_store)
        (folder / "settings.yaml").write_text(text, encoding="utf-8")
        done = run_measured(["run", "settings.yaml", "--no-progress"], folder)
        if done.returncode != 0:
            sys.exit(f"elspeth run failed:\n{done.output}")
        output, wall = done.output, done.wall_s
        meta = json.loads((folder / "out/summary.json").read_text(encoding="utf-8"))["metadata"]
        if (meta["failed"], meta["succeeded"]) != (bad, args.rows - bad):
            sys.exit(f"{meta['failed']} rejected and {meta['succeeded']} valid; expected {bad} and {args.rows - bad}")
        peak = done.peak_mib
        rate = meta["timings"]["rows_per_s"]
        print(output.splitlines()[1].strip())
        print(f"{args.rows:,} rows ({bad:,} rejected) in {wall:.1f} s: {args.rows / wall:,.0f} rows/s end to end")
        print(f"orchestrator alone: {rate:,.0f} rows/s ({meta['timings']['rows_s']:.1f} s)")
        print(f"peak RSS {peak:.1f} MiB")
        verdict = "ok" if rate >= args.target else "BELOW TARGET"
        print(f"target >= {args.target:,.0f} rows/s (orchestrator alone): {verdict}")
        if rate < args.target:
            sys.exit(1)


if __name__ == "__main__":
    main()
