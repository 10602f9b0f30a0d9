"""``python3 -m components.ibmcloud ACTION ...``: the command lines stored in Pulumi state run this.

Those lines are replayed at delete time, maybe long after they were stored: keep this entry
point, its module path and its flags as they are (see :mod:`components.ibmcloud.cmdline`).
"""

from __future__ import annotations

import sys

from .cmdline import main

if __name__ == "__main__":
    sys.exit(main())
