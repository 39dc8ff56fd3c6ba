"""`python -m landstack.tiler`: serve the tiler with uvicorn (settings from LANDSTACK_TILER_*)."""

from __future__ import annotations

import uvicorn

from landstack.tiler.app import create_app
from landstack.tiler.settings import TilerSettings


def main() -> None:
    """Run the tiler on LANDSTACK_TILER_HOST:LANDSTACK_TILER_PORT."""
    settings = TilerSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
