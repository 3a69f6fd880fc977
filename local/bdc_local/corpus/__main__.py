"""``python -m bdc_local.corpus``: see :mod:`bdc_local.corpus.cli`."""

from bdc_local.corpus.cli import main

raise SystemExit(main())
