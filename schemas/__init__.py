"""resontinex: schemas."""
