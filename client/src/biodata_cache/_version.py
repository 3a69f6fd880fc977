"""The package version. Its MAJOR.MINOR names the cache folder (``bdc-v1.0``)."""

__version__ = "1.0.0"
