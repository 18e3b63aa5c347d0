import sys

from benches.bcr_models.cli import main

sys.exit(main())
