"""`python -m kvmaint.cli`."""

import sys

from kvmaint.cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
