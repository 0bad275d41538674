"""``python -m resnetv2`` (also what ``torchrun -m resnetv2`` runs)."""

import sys

from resnetv2.cli import main

sys.exit(main())
