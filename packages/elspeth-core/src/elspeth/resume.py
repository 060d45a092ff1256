"""How a run uses its store: what to resume, what changed, and what the store is told as the run goes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from elspeth.config.settings import LoadedSettings
from elspeth.errors import ConfigError
from elspeth.store import RunStore, settings_diff
from elspeth.types import Failure, Record

__all__ = ["RunOptions", "open_store", "prior_rows", "store_path"]


@dataclass
class RunOptions:
    """How to run, beyond the settings file (the CLI's flags).

    Attributes:
        resume: the id of a run to continue: its finished rows are not run again.
        retry_errors: with ``resume``, run the rows that failed again (and only those, with the unfinished).
        force: resume even though the settings changed.
        use_cache: consult the response cache, if the settings configure one.
        record: keep the run in the run store (off for ``elspeth validate``).
    """

    resume: str | None = None
    retry_errors: bool = False
    force: bool = False
    use_cache: bool = True
    record: bool = True


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
    return RunStore.open(store_path(loaded))


def prior_rows(
    store: RunStore | None, loaded: LoadedSettings, options: RunOptions
) -> dict[tuple[str, str], Record | Failure]:
    """The finished rows of the run being resumed, after checking that the settings are the same.

    Raises:
        ConfigError: the settings changed (naming what changed) and ``force`` is off.
        StoreError: there is no such run.
    """
    if not options.resume:
        return {}
    assert store is not None
    run = store.run(options.resume)
    current = json.loads(json.dumps(loaded.raw, default=str))
    changed = settings_diff(run["settings"], current)
    if changed and not options.force:
        raise ConfigError(
            f"the settings changed since run {options.resume} ({', '.join(changed)}); resuming would mix results "
            "from different settings. Use --force to resume anyway, or start a new run."
        )
    rows = store.finished_rows(options.resume)
    if options.retry_errors:
        rows = {key: item for key, item in rows.items() if isinstance(item, Record)}
    return rows
