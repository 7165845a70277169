"""`python -m tessera ...`: the `tessera` command line (tessera.tools.cli)."""
from .tools.cli import main

raise SystemExit(main())
