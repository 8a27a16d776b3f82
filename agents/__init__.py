"""resontinex: agents."""
