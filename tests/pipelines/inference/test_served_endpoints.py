"""Which model server the `kserve` backend sends each model to."""

import pytest

from landstack.pipelines.errors import BadInputError
from landstack.pipelines.inference.served import ServedBackend

ENDPOINTS = {
    "tempcnn": "http://127.0.0.1:1",
    "unet": "http://127.0.0.1:2",
    "unet-imd": "http://127.0.0.1:3",
}


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("tempcnn", "http://127.0.0.1:1"),
        ("tempcnn-E40N30", "http://127.0.0.1:1"),  # a unit's model is in its family's release
        ("tempcnn-fallback", "http://127.0.0.1:1"),
        ("unet-imd-u7", "http://127.0.0.1:3"),  # the longest family name wins
        ("unet-built", "http://127.0.0.1:2"),
        ("impervious", None),
    ],
)
def test_unit_models_go_to_their_family_endpoint(name: str, url: str | None) -> None:
    assert ServedBackend("file:///registry", ENDPOINTS)._endpoint(name) == url


def test_the_wildcard_serves_every_other_model() -> None:
    backend = ServedBackend("file:///registry", {**ENDPOINTS, "*": "http://127.0.0.1:9"})
    assert backend._endpoint("impervious-fallback") == "http://127.0.0.1:9"
    assert backend._endpoint("tempcnn-u1") == "http://127.0.0.1:1"


def test_a_model_without_a_server_is_a_clear_error() -> None:
    with pytest.raises(BadInputError, match="no model server for model 'impervious'"):
        ServedBackend("file:///registry", ENDPOINTS)._client("impervious")
