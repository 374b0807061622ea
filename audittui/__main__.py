"""`python -m audittui` runs the command-line interface."""

from .command import main

raise SystemExit(main())
