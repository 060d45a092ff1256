"""Elspeth's ``opentelemetry`` observer: each row's path through a run, as OpenTelemetry traces over OTLP.

Turn it on in the settings::

    observers:
      - plugin: opentelemetry
        options: {endpoint: "http://127.0.0.1:4318/v1/traces"}
"""

__version__ = "0.1.0"
