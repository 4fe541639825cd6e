"""``python -m nas.report``: see ``nas.cli.report``."""

import sys

if __name__ == "__main__":
    from nas.cli.report import main

    sys.exit(main())
