"""S3 connection options, in the forms the project needs: fsspec's, GDAL's and boto's.

Services build one `S3Options` from their settings and hand it to `ObjectStore`, `open_url` and
`gdal_env`; nothing else constructs s3fs or GDAL options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr


class S3Options(BaseModel):
    """Endpoint, credentials and region of an S3-compatible object store (AWS, MinIO, moto)."""

    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    region: str = "us-east-1"

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    def fsspec_options(self) -> dict[str, Any]:
        """Keyword arguments for s3fs (`fsspec.filesystem("s3", **opts)`)."""
        opts: dict[str, Any] = {"client_kwargs": {"region_name": self.region}}
        if self.endpoint_url:
            opts["endpoint_url"] = self.endpoint_url
        if self.access_key_id and self.secret_access_key:
            opts["key"] = self.access_key_id.get_secret_value()
            opts["secret"] = self.secret_access_key.get_secret_value()
        return opts

    def for_url(self, url: str) -> dict[str, Any]:
        """fsspec options for one URL: the S3 options for s3://, nothing for local files."""
        return self.fsspec_options() if url.startswith("s3://") else {}

    def _endpoint_host(self) -> str | None:
        if not self.endpoint_url:
            return None
        parts = urlsplit(self.endpoint_url)
        return parts.netloc or parts.path

    def gdal_config(self) -> dict[str, Any]:
        """GDAL configuration options to read (and write) /vsis3/ through this endpoint (no secrets)."""
        cfg: dict[str, Any] = {"AWS_REGION": self.region, "CPL_VSIL_USE_TEMP_FILE_FOR_RANDOM_WRITE": "YES"}
        host = self._endpoint_host()
        if host and self.endpoint_url:
            cfg["AWS_S3_ENDPOINT"] = host
            cfg["AWS_HTTPS"] = "YES" if urlsplit(self.endpoint_url).scheme == "https" else "NO"
            cfg["AWS_VIRTUAL_HOSTING"] = "FALSE"
        return cfg

    def aws_session_options(self) -> dict[str, Any] | None:
        """Keyword arguments for rasterio's `AWSSession` (and odc-stac's `aws=`); None without credentials.

        GDAL takes credentials only through a session (rasterio.Env refuses them as options), and a
        session is per thread, so concurrent readers never share mutable process environment.
        """
        if not (self.access_key_id and self.secret_access_key):
            return None
        opts: dict[str, Any] = {
            "aws_access_key_id": self.access_key_id.get_secret_value(),
            "aws_secret_access_key": self.secret_access_key.get_secret_value(),
            "region_name": self.region,
        }
        host = self._endpoint_host()
        if host:
            opts["endpoint_url"] = host
        return opts


@contextlib.contextmanager
def gdal_env(s3: S3Options | None, **options: Any) -> Iterator[None]:
    """A rasterio environment in which GDAL reads and writes s3:// (as /vsis3/) through `s3`.

    Extra GDAL `options` (e.g. GDAL_NUM_THREADS) are added. rasterio environments are thread-local:
    enter one in every thread that opens rasters.
    """
    import rasterio

    if s3 is None:
        with rasterio.Env(**options):
            yield
        return
    session_opts = s3.aws_session_options()
    cfg = {**s3.gdal_config(), **options}
    if session_opts is None:
        with rasterio.Env(**cfg):
            yield
        return
    from rasterio.session import AWSSession

    with rasterio.Env(session=AWSSession(**session_opts), **cfg):
        yield


class S3Settings(BaseModel):
    """The S3 fields of a service's settings (`LANDSTACK_<SERVICE>_S3_*`): mix into its BaseSettings."""

    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, Ceph, moto); unset for AWS")
    s3_access_key_id: SecretStr | None = Field(None, description="S3 access key (better: from a Secret)")
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    def s3(self) -> S3Options:
        """The S3 endpoint, credentials and region as the storage layer takes them."""
        return S3Options(
            endpoint_url=self.s3_endpoint_url,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            region=self.s3_region,
        )
