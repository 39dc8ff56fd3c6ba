"""`python -m landstack.stac_api`: serve the STAC API with uvicorn (settings from LANDSTACK_API_*)."""

from __future__ import annotations

import uvicorn

from landstack.stac_api.app import create_app
from landstack.stac_api.settings import ApiSettings


def main() -> None:
    """Run the API on LANDSTACK_API_HOST:LANDSTACK_API_PORT."""
    settings = ApiSettings()
    if settings.workers > 1:
        # Worker processes import the factory and read the same LANDSTACK_API_* environment.
        uvicorn.run(
            "landstack.stac_api.app:create_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level="info",
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
        )
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


if __name__ == "__main__":
    main()
