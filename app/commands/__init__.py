"""The CLI commands' work (`resontinex.app.cli` parses and dispatches to them)."""
