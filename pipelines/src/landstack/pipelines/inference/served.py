"""The predict step's `kserve` backend: models behind KServe model servers (open inference protocol v2).

The registry supplies each model's metadata (features, time steps, normalisation, classes), the
model server the numbers. Endpoints are given per model name; a production unit's model
(``<name>-<unit>``, ``<name>-fallback``) goes to its family's ``<name>`` endpoint, because one
InferenceService serves a whole release of unit models; the key ``*`` serves every model not named
(one server hosting them all).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from landstack.pipelines.errors import BadInputError, PipelineError
from landstack.pipelines.inference.backends import ModelInfo
from landstack.storage import S3Options


class ServedBackend:
    """Runs registered models through their model servers (V2 binary REST or gRPC)."""

    def __init__(self, registry_url: str, endpoints: dict[str, str], s3: S3Options | None = None) -> None:
        if not endpoints:
            raise BadInputError(
                "the kserve backend needs model_servers: {model name or '*': 'http://host:port'}"
            )
        self.registry_url, self.endpoints, self.s3 = registry_url, dict(endpoints), s3
        self._clients: dict[str, Any] = {}
        self._infos: dict[tuple[str, str], ModelInfo] = {}
        self._lock = threading.Lock()

    def _client(self, name: str) -> Any:
        from landstack.pipelines.inference.client import ClientOptions, InferenceClient

        url = self._endpoint(name)
        if url is None:
            raise BadInputError(f"no model server for model {name!r}; add it (or '*') to model_servers")
        if url not in self._clients:
            options = ClientOptions(protocol="grpc" if url.startswith("grpc://") else "rest")
            self._clients[url] = InferenceClient(url, options)
        return self._clients[url]

    def _endpoint(self, name: str) -> str | None:
        if name in self.endpoints:
            return self.endpoints[name]
        # the longest family name wins, so `unet-imd-u1` goes to `unet-imd`, not to `unet`
        families = sorted((k for k in self.endpoints if k != "*" and name.startswith(f"{k}-")), key=len)
        if families:
            return self.endpoints[families[-1]]
        return self.endpoints.get("*")

    def model(self, name: str, version: str = "latest") -> ModelInfo:
        from landstack.models.errors import ModelError
        from landstack.models.registry import latest_version, load_registered

        with self._lock:
            try:
                resolved = (
                    latest_version(self.registry_url, name, self.s3) if version == "latest" else version
                )
                if (name, resolved) not in self._infos:
                    _module, metadata = load_registered(self.registry_url, name, resolved, self.s3)
                    self._infos[(name, resolved)] = ModelInfo(name, resolved, metadata)
            except ModelError as e:
                raise PipelineError(
                    f"cannot read model {name!r} version {version!r} from the registry: {e}"
                ) from e
            self._client(name).metadata(name)  # fail early when the server does not serve it
            return self._infos[(name, resolved)]

    def predict(self, model: ModelInfo, x: np.ndarray) -> np.ndarray:
        out = self._client(model.name).predict(model.name, model.fill_missing(x), version=None)
        return np.asarray(out, np.float32)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
