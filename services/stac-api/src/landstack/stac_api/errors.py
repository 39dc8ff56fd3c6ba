"""Errors of the STAC API service; messages say what to change."""

from __future__ import annotations


class StacApiError(Exception):
    """Base class of every STAC API service error."""


class ConfigError(StacApiError):
    """A setting is missing or inconsistent."""


class AuthError(StacApiError):
    """A write request is not authorised; `status` is 401 (no credentials) or 403 (refused)."""

    def __init__(self, status: int, message: str, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
