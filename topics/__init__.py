"""resontinex: topics."""
