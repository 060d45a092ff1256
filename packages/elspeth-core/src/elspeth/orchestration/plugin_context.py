"""What datasources and sinks are handed: the run's id, name, folders, logger and security level.

A module of its own, light to import: every sink and datasource module names it at import time,
and ``elspeth plugins list`` imports those modules without needing the orchestration context.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PluginContext"]


@dataclass
class PluginContext:
    """What datasources and sinks need from the run.

    Attributes:
        run_id: the run's id.
        name: the run's name.
        base_dir: the settings file's folder; relative input paths resolve against it.
        output_dir: where sinks write; relative output paths resolve against it.
        logger: the run's logger.
        security_level: the data's security level; sinks record it on what they write.
        written: every path :meth:`output_path` handed out during the run (resolved), whoever asked:
            a middleware's trail, a utility's index, a sink's file. A sink that packages the run (the
            signed bundle) lists those that exist, so no file the run wrote is left out.

    """

    run_id: str
    name: str
    base_dir: Path
    output_dir: Path
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("elspeth"))
    security_level: str = "UNOFFICIAL"
    written: set[Path] = field(default_factory=set)

    def input_path(self, path: str | Path) -> Path:
        """``path`` resolved against the settings file's folder."""
        return (self.base_dir / path).resolve()

    def output_path(self, path: str | Path) -> Path:
        """``path`` resolved against the output folder, whose parents are created; recorded in ``written``."""
        target = (self.output_dir / path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        self.written.add(target)
        return target
