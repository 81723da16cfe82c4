"""``python -m perfsuite``: the same command line as the ``perfsuite`` console script."""

import sys

from perfsuite.cli import main

if __name__ == "__main__":
    sys.exit(main())
