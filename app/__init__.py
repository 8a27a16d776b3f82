"""resontinex: app."""
