"""How a run uses its store: what to resume, what changed, what earlier attempts spent, and what to tell the store.

A resumed run carries over what its earlier attempts spent: the run's spending ledger starts from it
(so a budget covers the whole run, not each attempt), and the run's metadata and history count every
attempt's cost, tokens, LLM calls and duration. A cost tracker with ``use_ledger(ledger)`` (``price_table``)
reads the ledger; one with only ``restore(total, *, calls, tokens)`` is given the earlier figures; one
with neither starts each attempt from zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elspeth.config.settings import LoadedSettings
from elspeth.datatypes import Failure, Record, RunMetadata
from elspeth.errors import ConfigError
from elspeth.ledger import Ledger
from elspeth.store import RunStore, settings_diff
from elspeth.store_backends import open_store_url
from elspeth.totals import RunTotals

__all__ = [
    "ANSWER_NEUTRAL",
    "EarlierAttempts",
    "PriorRows",
    "RunOptions",
    "add_earlier_attempts",
    "open_configured",
    "open_store",
    "prior_rows",
    "restore_spending",
    "resumable",
    "store_path",
]

ANSWER_NEUTRAL = frozenset({"concurrency", "cost_tracker.options.budget"})
"""Settings a resume may change without ``--force``: they change how fast and how far a run goes, never an answer."""


@dataclass
class RunOptions:
    """How to run, beyond the settings file (the CLI's flags).

    Attributes:
        resume: the id of a run to continue: its finished rows are not run again.
        retry_errors: with ``resume``, run the rows that failed again (and only those, with the unfinished).
        force: resume even though the settings changed.
        use_cache: consult the response cache, if the settings configure one.
        record: keep the run in the run store (off for ``elspeth validate``).
        max_messages: a streaming run stops taking messages after this many (``--max-messages``).
        max_seconds: the run stops taking rows or messages after this many seconds (``--max-seconds``).
    """

    resume: str | None = None
    retry_errors: bool = False
    force: bool = False
    use_cache: bool = True
    record: bool = True
    max_messages: int | None = None
    max_seconds: float | None = None


def store_path(loaded: LoadedSettings) -> Path:
    """Where the settings' run store lives."""
    configured = loaded.settings.store.path
    return (loaded.base_dir / configured).resolve() if configured else loaded.output_dir / "elspeth-runs.sqlite"


def open_store(loaded: LoadedSettings, options: RunOptions) -> RunStore | None:
    """The run store for this run, or None when it is switched off."""
    if not options.record:
        return None
    if not loaded.settings.store.enabled:
        if options.resume:
            raise ConfigError("--resume needs the run store, which these settings switch off (store.enabled: false)")
        return None
    return open_configured(loaded)


def open_configured(loaded: LoadedSettings, *, create: bool = True) -> RunStore:
    """The settings' run store: the server at ``store.url``, or else the SQLite file (see :func:`store_path`)."""
    url = loaded.settings.store.url
    if url is not None:
        file = str(loaded.path) if loaded.path is not None else None
        return open_store_url(url, create=create, file=file)
    return RunStore.open(store_path(loaded), create=create)


class PriorRows(Mapping[tuple[str, str], Record | Failure]):
    """The finished rows of the run being resumed, by ``(group, row_id)``, read from the store as they are asked for.

    Only their count is held, so resuming a run of a million rows keeps memory flat. They are the rows
    as they were when this was made: what the resumed run commits itself is not among them.

    Args:
        store: the run store.
        run_id: the run being resumed.
        records_only: leave out the failures (``--retry-errors`` runs them again).
    """

    def __init__(self, store: RunStore, run_id: str, *, records_only: bool = False) -> None:
        self._store, self._run_id, self._records_only = store, run_id, records_only
        self._count, self._mark = store.finished_mark(run_id, records_only=records_only)

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        """The row's record or failure, or ``default`` (one indexed lookup, no exception)."""
        group, row_id = key
        item = self._store.finished_row(self._run_id, group, row_id, mark=self._mark, records_only=self._records_only)
        return default if item is None else item

    def __getitem__(self, key: tuple[str, str]) -> Record | Failure:
        item = self.get(key)
        if item is None:
            raise KeyError(key)
        return item  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._store.finished_keys(self._run_id, mark=self._mark, records_only=self._records_only))


def prior_rows(
    store: RunStore | None, loaded: LoadedSettings, options: RunOptions
) -> Mapping[tuple[str, str], Record | Failure]:
    """The finished rows of the run being resumed, after checking that the settings are the same.

    Only a change in :data:`ANSWER_NEUTRAL` (``concurrency``, the cost tracker's ``budget``) is allowed
    without ``force``.

    Raises:
        ConfigError: the settings changed (naming what changed) and ``force`` is off.
        StoreError: there is no such run.
    """
    if not options.resume:
        return {}
    assert store is not None
    run = store.run(options.resume)
    current = json.loads(json.dumps(loaded.raw, default=str))
    changed = [path for path in settings_diff(run["settings"], current) if path not in ANSWER_NEUTRAL]
    if changed and not options.force:
        raise ConfigError(
            f"the settings changed since run {options.resume} ({', '.join(changed)}); resuming would mix results "
            "from different settings. Use --force to resume anyway, or start a new run."
        )
    return PriorRows(store, options.resume, records_only=options.retry_errors)


@dataclass(frozen=True)
class EarlierAttempts:
    """What the attempts before this one of a resumed run spent.

    Attributes:
        totals: their cost, tokens, LLM calls and duration (see :meth:`RunStore.totals`).
        seeded: the part of ``totals`` already in the cost tracker's summary (all of it for a tracker that
            reads the ledger or has ``restore``, nothing for one with neither).

    """

    totals: RunTotals
    seeded: RunTotals


def restore_spending(
    store: RunStore | None, options: RunOptions, tracker: Any, ledger: Ledger | None = None
) -> EarlierAttempts | None:
    """Seed the run's ledger (and a cost tracker with ``restore``) with what a resumed run's earlier attempts spent.

    Returns:
        what the earlier attempts spent, or None when this run is not a resume.

    Raises:
        ConfigError: the earlier attempts already reached the tracker's budget; raising
            ``cost_tracker.options.budget`` (allowed without ``--force``) lets the run go on.
    """
    if store is None or not options.resume:
        return None
    spent = store.totals(options.resume)
    if ledger is not None:
        ledger.earlier = spent
    restore = getattr(tracker, "restore", None)
    if restore is None and not hasattr(tracker, "use_ledger"):
        return EarlierAttempts(spent, RunTotals())
    if restore is not None:
        tokens = {"prompt": spent.prompt_tokens, "completion": spent.completion_tokens}
        restore(spent.cost, calls=spent.llm_calls, tokens=tokens)
    reason = getattr(tracker, "stop_reason", None)
    if reason:
        raise ConfigError(
            f"run {options.resume} cannot go on: its earlier attempts spent its budget ({reason}). Raise "
            "cost_tracker.options.budget to resume it (a changed budget does not need --force)."
        )
    return EarlierAttempts(spent, spent)


def add_earlier_attempts(meta: RunMetadata, earlier: EarlierAttempts | None, spent: RunTotals) -> RunTotals:
    """Make a resumed run's metadata count every attempt; return (and set as ``meta.totals``) the run's totals.

    Only typed facts change: ``duration_s`` gets the earlier attempts' wall time, ``attempt_duration_s``
    keeps this attempt's. What an orchestrator reports of its spending it reads from the run's ledger
    (``ctx.ledger.total()`` counts every attempt), and a cost tracker's summary is its own.

    Args:
        meta: this attempt's metadata, changed in place.
        earlier: what the earlier attempts spent (None: not a resume).
        spent: what this attempt spent, from the run's ledger (:class:`elspeth.Ledger`).
    """
    attempt = spent + RunTotals(duration_s=meta.duration_s)
    if earlier is None:
        meta.totals = attempt
        return attempt
    prior = earlier.totals
    meta.attempt_duration_s = meta.duration_s
    meta.duration_s = round(meta.duration_s + prior.duration_s, 6)
    meta.totals = prior + attempt
    return meta.totals


def resumable(status: str, metadata: Mapping[str, Any] | None) -> bool:
    """Whether resuming a run would do anything.

    A run killed or crashed (``running``, ``failed``), stopped by Ctrl-C (``interrupted``) or by its
    budget (``stopped`` with a ``stop_reason``) has rows left to run. A completed run has none, and
    neither has one whose every stop was an experiment's early stop (``stopped`` without a
    ``stop_reason``): resuming it would take over the finished rows and stop again.
    """
    if status == "completed":
        return False
    if status == "stopped":
        return bool((metadata or {}).get("stop_reason"))
    return True
