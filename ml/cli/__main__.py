"""``python -m ml.cli``: the same as the ``pulmocalc`` command."""

import sys

from . import main

sys.exit(main())
