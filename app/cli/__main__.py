"""`python -m app.cli`: how `workbench up` starts its children with the same interpreter."""

import sys

from app.cli import main

sys.exit(main())
