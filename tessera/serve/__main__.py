"""python -m tessera.serve PACKAGE --host 127.0.0.1 --port N (the same as `tessera serve`)."""
from .cli import serve_main

raise SystemExit(serve_main())
