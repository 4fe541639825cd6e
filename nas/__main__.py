"""``python -m nas`` is ``python -m nas.search``."""

import sys

from nas.cli.search import main

sys.exit(main())
