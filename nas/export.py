"""``python -m nas.export``: see ``nas.cli.export``."""

import sys

if __name__ == "__main__":
    from nas.cli.export import main

    sys.exit(main())
