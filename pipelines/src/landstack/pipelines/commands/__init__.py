"""Sub-command groups of the landstack CLI."""
