"""``python -m amsnet.cli``."""

import sys

from amsnet.cli import main

sys.exit(main())
