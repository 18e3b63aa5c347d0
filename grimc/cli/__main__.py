"""`python -m grimc.cli` is `grimc`."""

import sys

from grimc.cli import main

sys.exit(main())
