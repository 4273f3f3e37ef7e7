"""ibdata: historical bars and contract data from Interactive Brokers.

The gateway simulator lives in :mod:`ibdata.sim` and is imported only on demand.
"""

from ibdata._version import __version__
from ibdata.pacing import PacingRules

__all__ = ["PacingRules", "__version__"]
