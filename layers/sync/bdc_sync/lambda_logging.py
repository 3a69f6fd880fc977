"""Every log line of a function, the layer's included, as one JSON object at LogLevel.

The Lambda Python runtime (without ``LoggingConfig``) gives the root logger a plain
text handler and leaves it at Python's default WARNING. The layer's modules log
through ``logging.getLogger(__name__)``, so without this their INFO lines would be
dropped and their warnings would reach CloudWatch as text, without their ``extra``
fields or the keys a handler appends (``run_id``, ``table``, ``chunk``).
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# Top-level loggers of the code in the layers. They are created here so that a
# module imported later (a table module loaded on demand) logs through them too:
# its `logging.getLogger(__name__)` is their child and propagates to them.
LAYER_PACKAGES = ("bdc_sync", "biodata_cache", "aind_data_access_api")


def route_logs_through(logger: Logger) -> None:
    """Give the layer's loggers ``logger``'s JSON handler and level (LogLevel), and every
    other logger registered so far (boto3, botocore, urllib3, ...) the same handler at
    Python's default WARNING (Powertools' ``copy_config_to_registered_loggers``), so
    no line reaches CloudWatch as text and botocore's INFO chatter stays out.

    Call it at module level in a function's ``app.py``, after its imports.
    """
    for name in LAYER_PACKAGES:
        logging.getLogger(name)
    copy_config_to_registered_loggers(source_logger=logger, include=set(LAYER_PACKAGES))
    # Their own level stays unset, so without propagation the root's WARNING applies.
    copy_config_to_registered_loggers(
        source_logger=logger, exclude=set(LAYER_PACKAGES), ignore_log_level=True
    )
