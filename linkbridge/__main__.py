"""`python -m linkbridge` runs the command-line interface."""

from __future__ import annotations

import sys

from linkbridge.cli.main import main

sys.exit(main())
