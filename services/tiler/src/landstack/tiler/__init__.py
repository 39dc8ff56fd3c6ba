"""landstack tiler: map tiles, previews, AOI statistics and the web map over the pgstac catalogue."""

from landstack.tiler.app import create_app
from landstack.tiler.settings import TilerSettings

__all__ = ["TilerSettings", "create_app"]
