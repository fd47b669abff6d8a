"""``python -m bench``: see bench/README.md and ``python -m bench --help``."""

import sys

from bench.runner import main

sys.exit(main())
