"""Elspeth's ``prometheus`` observer: a run's live figures served on ``/metrics`` at a loopback address.

Turn it on in the settings::

    observers:
      - plugin: prometheus
        options: {port: 9464}
"""

__version__ = "0.1.0"
