"""landstack STAC API: stac-fastapi on pgstac with protected writes and INSPIRE records."""

from landstack.stac_api.app import create_app
from landstack.stac_api.settings import ApiKey, ApiSettings, hash_token

__all__ = ["ApiKey", "ApiSettings", "create_app", "hash_token"]
