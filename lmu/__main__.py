"""``python -m lmu``: the same command line as the ``lmu`` script."""

import sys

from .cli import main

sys.exit(main())
