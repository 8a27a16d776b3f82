"""Packaged default configuration files (YAML). See :func:`app.settings.config_file`."""

from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parent
