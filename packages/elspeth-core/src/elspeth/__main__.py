"""``python -m elspeth``: the same as the ``elspeth`` command."""

from elspeth.cli import main

main()
