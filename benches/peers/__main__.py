"""`python -m benches.peers`: see benches.peers.cli."""

import sys

from benches.peers.cli import main

sys.exit(main())
