"""``python -m gateway``: the ``tandem`` command."""

from gateway.cli.main import main

main()
