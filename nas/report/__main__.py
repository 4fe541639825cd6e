"""``python -m nas.report``: see ``nas.cli.report``."""

import sys

from nas.cli.report import main

sys.exit(main())
