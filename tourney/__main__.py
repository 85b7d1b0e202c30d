"""``python -m tourney``: the command line (:func:`tourney.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
