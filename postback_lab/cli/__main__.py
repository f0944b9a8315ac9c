"""``python -m postback_lab.cli``: the ``postback-lab`` command."""

import sys

from . import main

sys.exit(main())
