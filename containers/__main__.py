"""``python -m containers serve --framework sklearn``."""

import sys

from containers.cli import main

if __name__ == "__main__":
    sys.exit(main())
