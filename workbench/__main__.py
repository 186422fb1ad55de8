"""``python -m workbench`` (what ``torchrun ... -m workbench`` runs): the ``workbench`` CLI."""

import sys

from workbench.cli import main

sys.exit(main())
