"""``python -m nas`` is ``python -m nas.search``."""

import sys

from .search import main

sys.exit(main())
