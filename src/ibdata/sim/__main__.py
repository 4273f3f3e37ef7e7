"""``python -m ibdata.sim``: run the simulator until interrupted (same as ``ibdata sim``)."""

import sys

from ibdata.cli import main

if __name__ == "__main__":
    sys.exit(main(["sim", *sys.argv[1:]]))
