"""``python -m bdc_local.corpus``."""

from bdc_local.corpus.builder import main

raise SystemExit(main())
