"""This distribution's plugins in every registry its tests build: they are no longer core's builtins."""

from elspeth_testing import distribution_fixtures

# what the entry point of elspeth-signed registers, under the label and distribution it has when installed
make_registry, run_settings = distribution_fixtures("signed", "elspeth-signed", "elspeth_signed.plugin")
