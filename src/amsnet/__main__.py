"""``python -m amsnet``."""

import sys

from amsnet.cli import main

sys.exit(main())
