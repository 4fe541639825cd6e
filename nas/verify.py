"""``python -m nas.verify``: see ``nas.cli.verify``."""

import sys

if __name__ == "__main__":
    from nas.cli.verify import main

    sys.exit(main())
