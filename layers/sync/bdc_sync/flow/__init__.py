"""The event flow: dispatch a run, build its tables, finalize it."""
