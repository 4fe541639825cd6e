"""``python -m nas.search``: see ``nas.cli.search``."""

import sys

if __name__ == "__main__":
    from nas.cli.search import main

    sys.exit(main())
