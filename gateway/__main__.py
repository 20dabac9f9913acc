"""``python -m gateway``: the ``tandem`` command."""

from gateway.cli import main

main()
