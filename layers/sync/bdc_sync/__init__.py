"""Shared code of the biodata-cache sync Lambda functions (the ``sync`` layer)."""
