"""record_consistency_results and record_consistency_checks: data-quality checks over the
metadata, run by ``bdc_sync.consistency`` (reuse of unchanged results, crash isolation).

The checks themselves are one module each under ``bdc_sync/checks/``.
"""

from __future__ import annotations

from bdc_sync.checks import CHECKS
from bdc_sync.consistency import ConsistencyTable
from biodata_cache.catalog import RECORD_CONSISTENCY_RESULTS

TABLE = ConsistencyTable(spec=RECORD_CONSISTENCY_RESULTS, checks=CHECKS)
