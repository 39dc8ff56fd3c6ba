"""landstack."""
