"""The one-file binary's entry point: what the `chinwag` console script runs."""

import sys

from chat.cli import main

if __name__ == "__main__":
    sys.exit(main())
