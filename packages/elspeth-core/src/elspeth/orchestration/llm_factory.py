"""The one place a run's LLM pipelines are built: the settings' ``llm`` and every experiment variant's.

Each pipeline is the client in the run's middleware, rate limiter, cost tracker and response cache,
and each is built only after the same two checks pass, before any row: the client is cleared for
the data's level (:func:`elspeth.security.check_clearance`), and every endpoint it declares is in
``allowed_endpoints`` (:func:`elspeth.endpoints.check_endpoints`).

A variant that sends the data somewhere else than the run's client (its own ``llm``, or
``llm_options`` that change ``base_url``, ``endpoint``, ``deployment`` or the client's declared
endpoint in any other way) inherits no clearance: it is cleared for what its own reference declares,
else for its class's ``default_clearance``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from elspeth.endpoints import check_endpoints, declared_endpoints, normalise_url
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.runner import Cancel
from elspeth.security import SecurityLevel, check_clearance

if TYPE_CHECKING:
    from elspeth.config._yaml import Checker, Loc
    from elspeth.config.settings import LoadedSettings, PluginRef
    from elspeth.ledger import Ledger
    from elspeth.observing import Observation
    from elspeth.registry import Resolved

__all__ = ["ENDPOINT_OPTIONS", "LLMFactory"]

ENDPOINT_OPTIONS = frozenset({"base_url", "endpoint", "deployment", "azure_endpoint", "api_base", "url"})
"""Client options that choose where a request goes: a variant overriding one keeps no inherited clearance."""

_ADVICE = "give the variant its own `llm: {plugin, options, security_level}` if that service may receive such data"

Resolve = Callable[[str, "PluginRef", "Loc", "Checker"], "Resolved | None"]


def _destination(client: Any) -> tuple[tuple[str, ...], str | None]:
    """Where ``client`` sends requests: its declared endpoints and, for a deployment-based service, which one."""
    options = getattr(client, "options", None)
    deployment = getattr(client, "deployment", None) or getattr(options, "deployment", None)
    urls = []
    for url in declared_endpoints(client):
        try:
            urls.append(normalise_url(url))
        except ValueError:  # reported by the endpoint check; compared as written here
            urls.append(url)
    return tuple(sorted(urls)), (str(deployment) if deployment is not None else None)


@dataclass
class LLMFactory:
    """Builds the run's LLM pipelines, each with its clearance and endpoint checks.

    Attributes:
        loaded: the settings (``allowed_endpoints``, ``retry``, the ``llm`` reference).
        data: the data's level and what set it.
        cancel: the run's cancel switch, shared by every pipeline.
        middleware: the settings' middleware, outermost first, shared by every pipeline.
        rate_limiter: the settings' rate limiter, if any.
        cost_tracker: the settings' cost tracker, if any.
        cache: the response cache, if one is configured and in use.
        run_client: the settings' own client once built; a variant is compared with it.
        ledger: the run's spending ledger, fed by every pipeline.

    """

    loaded: LoadedSettings
    data: tuple[SecurityLevel, str]
    cancel: Cancel = field(default_factory=Cancel)
    middleware: Sequence[Any] = ()
    rate_limiter: Any | None = None
    cost_tracker: Any | None = None
    cache: Any | None = None
    run_client: Any | None = None
    ledger: Ledger | None = None
    built: list[LLMPipeline] = field(default_factory=list, repr=False)
    observation: Observation | None = None
    run_tag: str = "run"  # the run's id: the prefix of its provider batches' tags (settings `batch_api`)
    journal: Any | None = None  # where the run's batches are kept (default: in memory)

    def observe(self, observation: Observation) -> None:
        """Report every attempt of every pipeline built, and of each built from now on, to ``observation``."""
        self.observation = observation
        for pipeline in self.built:
            pipeline.observation = observation

    def use_controls(self, rate_limiter: Any | None, cost_tracker: Any | None) -> None:
        """Use these controls in every pipeline built and each built from now on.

        A cluster executor's worker swaps the run's own rate limiter and cost tracker for ones that
        share the cluster's limit and budget (:func:`elspeth.run_partition`'s ``controls``).
        """
        self.rate_limiter, self.cost_tracker = rate_limiter, cost_tracker
        for pipeline in self.built:
            pipeline.use_controls(rate_limiter, cost_tracker)

    def pipeline(self, client: Any, name: str) -> LLMPipeline:
        """``client`` inside the run's middleware, controls and cache (no check: see :meth:`checked`)."""
        made = LLMPipeline(
            client,
            self.middleware,
            self.rate_limiter,
            self.cost_tracker,
            name=name,
            retry=self.loaded.settings.retry,
            cancel=self.cancel,
            cache=self.cache,
            ledger=self.ledger,
            observation=self.observation,
        )
        self.built.append(made)
        return made

    def use_journal(self, journal: Any) -> None:
        """Keep the run's batches in ``journal`` (the run store's), for every pipeline built and to be built."""
        self.journal = journal
        for pipeline in self.built:
            if hasattr(pipeline.client, "journal"):
                pipeline.client.journal = journal

    def checked(self, client: Any, name: str, loc: Loc, checker: Checker) -> LLMPipeline | None:
        """The pipeline for ``client`` if its endpoints are allowed; else None, the problem reported at ``loc``."""
        if not check_endpoints(client, "LLM", self.loaded.settings.allowed_endpoints, loc, checker):
            return None
        if self.loaded.settings.batch_api.enabled:
            batched = self._batched(client, name, loc, checker)
            if batched is None:
                return None
            client = batched
        return self.pipeline(client, name)

    def _batched(self, client: Any, name: str, loc: Loc, checker: Checker) -> Any | None:
        """``client`` gathering its calls into provider batches, or None (reported) if it has no batch API."""
        from elspeth.batch_gather import BatchedClient
        from elspeth.batch_run import MemoryJournal
        from elspeth.batching import supports_batching

        if not supports_batching(client):
            checker.add(
                loc,
                f"batch_api is on, but llm_client '{name}' has no batch API (see docs/batch-api.md for the clients "
                "that do); turn `batch_api.enabled` off",
            )
            return None
        if self.journal is None:
            self.journal = MemoryJournal()
        opts = self.loaded.settings.batch_api
        return BatchedClient(
            client,
            self.journal,
            run_tag=self.run_tag,
            gather_s=opts.gather_s,
            poll_interval=opts.poll_interval_s,
            retry_live=opts.retry_live,
            on_status=batch_progress,
        )

    def variant(
        self,
        resolve: Resolve,
        ref: PluginRef | None,
        options_override: Mapping[str, Any] | None,
        loc: Loc,
        checker: Checker,
        options_loc: Loc | None = None,
    ) -> LLMPipeline | None:
        """Build, check and wrap another client or other client options (see ``OrchestrationContext.build_llm``)."""
        base = ref or self.loaded.settings.llm
        if base is None:
            checker.add(loc, "no LLM client: set `llm` in the settings")
            return None
        ref_loc: Loc = loc if ref is not None else ("llm",)
        target = checker
        if options_override:
            base = base.model_copy(update={"options": {**base.options, **options_override}})
            where = options_loc if options_loc is not None else loc if ref is None else (*loc, "options")
            target = checker.moved({(*ref_loc, "options", key): (*where, key) for key in options_override})
        resolved = resolve("llm_client", base, ref_loc, target)
        if resolved is None:
            return None
        try:
            client = resolved.build()
        except Exception as exc:  # a plugin's constructor may fail on anything; report it at its place
            checker.add(loc, f"llm_client '{resolved.info.name}' could not start: {exc}")
            return None
        declared, why = base.security_level, ""
        if ref is None:
            why = self._moved(client, options_override or {})
            declared = None if why else declared
        name = resolved.info.name
        advice = _ADVICE if why else None
        cleared = check_clearance(
            "llm_client", name, declared, resolved.info.factory, self.data, loc, checker, why=why, advice=advice
        )
        pipeline = self.checked(client, name, loc, checker)  # both problems are reported, not only the first
        return pipeline if cleared else None

    def _moved(self, client: Any, override: Mapping[str, Any]) -> str:
        """Why ``client`` (the run's client with ``override``) keeps no clearance of ``llm``, or ``""``."""
        keys = sorted(ENDPOINT_OPTIONS.intersection(override))
        if self.run_client is None:  # the run's own client was not built: only the options can tell
            if not keys:
                return ""
            change = f"changes {', '.join(f'`{k}`' for k in keys)} of the run's `llm`"
        else:
            old, new = _destination(self.run_client), _destination(client)
            if old == new:
                return ""
            if old[0] != new[0]:
                change = f"sends to {', '.join(declared_endpoints(client)) or 'no endpoint'} instead of " + (
                    ", ".join(declared_endpoints(self.run_client)) or "nowhere"
                )
            else:
                change = f"uses deployment {new[1]!r} instead of {old[1]!r}"
        return f"this variant {change}, so the security_level declared on `llm` does not carry over: "


def batch_progress(statuses: Sequence[Any]) -> None:
    """One line on stderr per poll round: each batch's state and counts."""
    import sys

    for st in statuses:
        print(
            f"batch {st.batch_id}: {st.state} (submitted {st.submitted}, in progress {st.in_progress}, "
            f"done {st.done}, failed {st.failed}, expired {st.expired})",
            file=sys.stderr,
            flush=True,
        )
