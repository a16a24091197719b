"""``python -m mllife.cli``: the ``mllife`` command."""

import sys

from mllife.cli import main

sys.exit(main())
