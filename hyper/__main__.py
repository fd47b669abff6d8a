"""``python -m hyper``: the command line client (see :mod:`hyper.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
