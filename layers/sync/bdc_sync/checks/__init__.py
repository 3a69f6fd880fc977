"""Record consistency checks, one per module; each module's ``CHECK`` is run by
``bdc_sync.consistency`` and its key is the module's name.

Add a check: write a module here with ``CHECK = Check(...)`` and list it below.
"""

from __future__ import annotations

from bdc_sync.checks import (
    docdb_duplicate_name_v2,
    docdb_v1_name_missing_in_v2,
    open_data_prefix_missing_docdb_v2,
)
from bdc_sync.consistency import Check

CHECKS: tuple[Check, ...] = (
    docdb_duplicate_name_v2.CHECK,
    docdb_v1_name_missing_in_v2.CHECK,
    open_data_prefix_missing_docdb_v2.CHECK,
)
