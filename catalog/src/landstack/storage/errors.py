"""Errors of the object-store layer; messages name the URL and what to change."""

from __future__ import annotations


class StoreError(Exception):
    """Reading, writing or listing the object store failed."""
