"""``python -m ibdata``: the ibdata command line."""

import sys

from ibdata.cli import main

if __name__ == "__main__":
    sys.exit(main())
