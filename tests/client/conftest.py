"""Fixtures of the client tests live in cache_fixtures (a unique module name: several
test folders have a conftest, and `from conftest import` would pick any of them)."""

from cache_fixtures import *  # noqa: F403
from cache_fixtures import _isolated_env  # noqa: F401  (autouse; star imports skip it)
