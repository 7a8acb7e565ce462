"""``python -m suibou`` is the ``suibou`` command."""

from suibou.cli import main

raise SystemExit(main())
