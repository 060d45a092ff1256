"""Hookspecs of the experiment orchestrator's own plugin domains.

They are added to Elspeth through core's ``add_hookspecs`` hook, so core knows none of them. A
distribution that implements one of these hooks works only where this distribution is installed.

Example:
    ``elspeth_myplugins/plugin.py``::

        from elspeth import hookimpl

        @hookimpl
        def register_aggregators(register):
            register(MedianLatency)

"""

from __future__ import annotations

from elspeth import Registrar, hookspec

DOMAINS = {
    "register_row_plugins": "row_plugin",
    "register_aggregators": "aggregator",
    "register_validators": "validator",
    "register_baseline_comparisons": "baseline_comparison",
    "register_early_stops": "early_stop",
}


@hookspec
def register_row_plugins(register: Registrar) -> None:
    """Register row plugins (domain ``row_plugin``): ``process_row(row, responses) -> metrics``.

    A row plugin runs once per finished row; the mapping it returns is merged into the record's metrics.

    Args:
        register: call ``register(MyRowPlugin)`` once per class.

    Example::

        @hookimpl
        def register_row_plugins(register):
            register(ScoreExtractor)

    """


@hookspec
def register_aggregators(register: Registrar) -> None:
    """Register aggregators (domain ``aggregator``): ``finalize(records) -> summary``.

    An aggregator runs once per experiment after its last row; its summary is stored under its name.
    One that also needs the failed rows, the rows not run or the early stop defines
    ``finalize_result(result: ExperimentResult)``, which is then called instead of ``finalize``.

    Args:
        register: call ``register(MyAggregator)`` once per class.

    Example::

        @hookimpl
        def register_aggregators(register):
            register(ScoreStats)

    """


@hookspec
def register_validators(register: Registrar) -> None:
    """Register validators (domain ``validator``): ``validate(response, row)`` raising ``ValidationFailed``.

    A rejected response is asked for again up to the orchestrator's ``validation_retries`` times.
    A validator that calls an LLM to decide returns those responses (or raises
    ``ValidationFailedWithCalls`` carrying them) so their tokens and cost count toward the row.
    Any sub-plugin (validator or other) that needs more than its options, such as a second LLM
    client, may define ``setup(setup: SetupContext)``; it runs while the settings are checked.

    Args:
        register: call ``register(MyValidator)`` once per class.

    Example::

        @hookimpl
        def register_validators(register):
            register(RegexMatch)

    """


@hookspec
def register_baseline_comparisons(register: Registrar) -> None:
    """Register baseline comparisons (domain ``baseline_comparison``): ``compare(baseline, variant) -> result``.

    ``compare`` runs once per variant, after every experiment has finished and before any sink writes.
    A plugin whose result for one variant depends on the others (a multiple-comparison correction
    such as Holm's across variants and criteria) defines ``compare_all(baseline, variants) ->
    {variant_name: result}`` instead; it is called once, with every variant.

    Args:
        register: call ``register(MyComparison)`` once per class.

    Example::

        @hookimpl
        def register_baseline_comparisons(register):
            register(ScoreDelta)

    """


@hookspec
def register_early_stops(register: Registrar) -> None:
    """Register early-stop plugins (domain ``early_stop``): ``check(record) -> reason or None``.

    Checked after every finished row; the first reason stops the experiment from taking new rows.
    Rows in flight finish and are kept. A plugin that must also see failed rows (a failure-rate
    stop) defines ``check_failure(failure)`` with the same return convention.

    Args:
        register: call ``register(MyStop)`` once per class.

    Example::

        @hookimpl
        def register_early_stops(register):
            register(Threshold)

    """
