"""Local stand-ins for the cloud services biodata-cache talks to (for tests and the local stack)."""
