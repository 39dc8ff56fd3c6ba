"""Every command refuses bad input the same way: exit 2, one `error:` line naming the value, no
traceback, nothing written. Runtime failures exit 1; bugs keep their traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from landstack.pipelines.cli import app
from landstack.pipelines.commands._errors import BAD_INPUT, FAILED, classify
from landstack.pipelines.settings import get_settings


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of every kind the commands take, good and bad."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)

    def table(labels: list[object]) -> pd.DataFrame:
        cols = {
            f"{f}_{t}": rng.random(len(labels)).astype("float32") for f in ("B04", "NDVI") for t in range(3)
        }
        return pd.DataFrame({"label": labels, "group": np.arange(len(labels)), **cols})

    good = table([1, 2, 3] * 4)
    good.to_parquet(d / "good.parquet")
    good.to_csv(d / "csv_named.parquet", index=False)
    bad_type = good.copy()
    bad_type["NDVI_1"] = "high"
    bad_type.to_parquet(d / "string_feature.parquet")
    table([1, 2, 99] * 4).to_parquet(d / "unknown_code.parquet")
    table([5] * 8).to_parquet(d / "one_class.parquet")
    table([1, 2, 2, 2, 3, 3, 3]).to_parquet(d / "rare_class.parquet")
    table(["forest", "water"] * 4).to_parquet(d / "string_labels.parquet")
    (d / "table.xlsx").write_bytes(b"PK\x03\x04")
    pts = pd.DataFrame({"x": [16.3, 16.31], "y": [48.2, 48.21], "label": [1, 2]})
    pts.to_parquet(d / "points.parquet")
    pts.drop(columns="label").to_parquet(d / "points_nolabel.parquet")
    pts.assign(label=["a", "b"]).to_parquet(d / "points_strlabel.parquet")
    pts.to_csv(d / "points_csv.parquet", index=False)
    (d / "not.json").write_text("this is { not json")
    (d / "collection.json").write_text(json.dumps({"type": "Collection", "id": "x", "links": []}))
    (d / "not_geojson.geojson").write_text(json.dumps({"hello": "world"}))
    square = [[[16.30, 48.20], [16.31, 48.20], [16.31, 48.21], [16.30, 48.20]]]
    (d / "points.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"label": 1},
                        "geometry": {"type": "Point", "coordinates": [16.3, 48.2]},
                    }
                ],
            }
        )
    )
    (d / "unlabelled.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "a"},
                        "geometry": {"type": "Polygon", "coordinates": square},
                    }
                ],
            }
        )
    )
    return {p.stem + p.suffix: p for p in d.iterdir()}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty file:// object store for the command; the test checks it stays empty."""
    root = tmp_path / "store"
    monkeypatch.setenv("LANDSTACK_STORE_URL", root.as_uri())
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def _written(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _refused(args: list[str], store: Path, *expected: str) -> str:
    """Run the command in-process; assert exit 2, one error line naming `expected`, nothing written."""
    res = CliRunner().invoke(app, args)
    assert res.exit_code == BAD_INPUT, (args, res.output, res.exception)
    assert isinstance(res.exception, SystemExit), res.exception  # no Python exception escaped
    err = res.stderr.strip()
    assert "Traceback" not in res.output
    assert err.startswith("error: ") and "\n" not in err, err
    for text in expected:
        assert text in err, (text, err)
    assert _written(store) == [], _written(store)
    return err


SYNTH = [
    (["--bbox", "1,2,3"], ["'1,2,3'", "4 numbers"]),
    (["--bbox", "a,b,c,d"], ["'a,b,c,d'", "4 numbers"]),
    (["--bbox", "16.3,48.2,16.2,48.3"], ["16.3,48.2,16.2,48.3", "minx must be below maxx"]),
    (["--bbox", "190,48,191,49"], ["190,48,191,49", "-180..180"]),
    (["--bbox", "16,95,17,96"], ["16,95,17,96", "-90..90"]),
    (["--bbox", "0,0,10,10"], ["spans", "smaller AOI"]),
    (["--crs", "EPSG:99999"], ["EPSG:99999", "not a known CRS"]),
    (["--crs", "not-a-crs"], ["not-a-crs"]),
    (["--start", "2023-13-01"], ["2023-13-01", "YYYY-MM-DD"]),
    (["--end", "yesterday"], ["yesterday", "YYYY-MM-DD"]),
    (["--start", "2024-01-01", "--end", "2023-01-01"], ["2024-01-01", "after", "2023-01-01"]),
    (["--provider", "sentinelhub"], ["sentinelhub", "earth-search"]),
    (["--prefix", "../outside"], ["../outside", "relative key"]),
    (["--workers", "0"], ["--workers", "at least 1"]),
]


@pytest.mark.parametrize(("args", "expected"), SYNTH, ids=[" ".join(a) for a, _ in SYNTH])
def test_synth_refuses(args: list[str], expected: list[str], store: Path) -> None:
    _refused(["synth", *args], store, *expected)


def test_unsupported_store_url_is_refused(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDSTACK_STORE_URL", "ftp://example.org/x")
    get_settings.cache_clear()
    _refused(["synth"], store, "LANDSTACK_STORE_URL", "ftp")


def test_catalog_build_refuses(files: dict[str, Path], tmp_path: Path, store: Path) -> None:
    _refused(["catalog", "build", "--out", str(files["not.json"])], store, "not.json", "is a file")
    out = tmp_path / "cat"
    _refused(["catalog", "build", "--out", str(out), "--api-url", "ftp://stac.example"], store, "ftp")
    _refused(["catalog", "build", "--out", str(out), "--api-url", "http://"], store, "'http://'", "no host")
    assert not out.exists()


def _stack_args(files: dict[str, Path], **change: str | None) -> list[str]:
    opts: dict[str, str | None] = {
        "--bbox": "16.29,48.19,16.31,48.21",
        "--year": "2023",
        "--catalog": str(files["collection.json"]),
    }
    opts.update({f"--{k.replace('_', '-')}": v for k, v in change.items()})
    return [x for k, v in opts.items() if v is not None for x in (k, v)]


STACK_CASES = [
    ({"catalog": None}, ["exactly one source"]),
    ({"api_url": "http://127.0.0.1:9"}, ["exactly one source"]),
    ({"catalog": "/no/such/collection.json"}, ["/no/such/collection.json", "does not exist"]),
    ({"catalog": "NOT_JSON"}, ["not.json", "not valid JSON"]),
    ({"catalog": "ftp://host/c.json"}, ["ftp", "not supported"]),
    ({"catalog": None, "api_url": "stac.example.org"}, ["stac.example.org", "not a URL"]),
    ({"catalog": None, "api_url": "s3://bucket/stac"}, ["s3", "not supported"]),
    ({"catalog": None, "api_url": "http://host:notaport"}, ["http://host:notaport", "malformed"]),
    ({"bbox": "16.31,48.19,16.29,48.21"}, ["16.31,48.19,16.29,48.21", "minx must be below maxx"]),
    ({"crs": "EPSG:123456"}, ["EPSG:123456", "not a known CRS"]),
    ({"target_crs": "EPSG:0"}, ["EPSG:0", "'native'"]),
    ({"year": "20230"}, ["20230", "reference year"]),
    ({"max_cloud": "150"}, ["150", "0..100"]),
]


@pytest.mark.parametrize("command", ["timeseries", "unet"])
@pytest.mark.parametrize(("change", "expected"), STACK_CASES, ids=[str(c) for c, _ in STACK_CASES])
def test_features_refuse(
    command: str, change: dict[str, str | None], expected: list[str], files: dict[str, Path], store: Path
) -> None:
    change = {k: str(files["not.json"]) if v == "NOT_JSON" else v for k, v in change.items()}
    _refused(["features", command, *_stack_args(files, **change)], store, *expected)


def test_features_output_keys_are_checked(files: dict[str, Path], store: Path) -> None:
    _refused(
        ["features", "timeseries", *_stack_args(files), "--prefix", "/abs"], store, "/abs", "relative key"
    )
    _refused(["features", "unet", *_stack_args(files), "--key", "../x.tif"], store, "../x.tif")


def test_samples_refuse(files: dict[str, Path], store: Path) -> None:
    base = _stack_args(files)
    _refused(["samples", *base], store, "exactly one of --points")
    both = ["--points", str(files["points.parquet"]), "--polygons", str(files["points.geojson"])]
    _refused(["samples", *base, *both], store, "exactly one of --points")
    _refused(["samples", *base, "--points", "/no/pts.parquet"], store, "/no/pts.parquet", "does not exist")
    _refused(
        ["samples", *base, "--points", str(files["points_csv.parquet"])],
        store,
        "points_csv.parquet",
        "not a Parquet",
    )
    _refused(
        ["samples", *base, "--points", str(files["points_nolabel.parquet"])],
        store,
        "lacks the columns ['label']",
    )
    _refused(
        ["samples", *base, "--points", str(files["points_strlabel.parquet"])], store, "'label'", "numbers"
    )
    pts = ["--points", str(files["points.parquet"])]
    _refused(["samples", *base, *pts, "--points-crs", "EPSG:99999"], store, "EPSG:99999")
    _refused(["samples", *base, *pts, "--out", "../t.parquet"], store, "../t.parquet")
    _refused(["samples", *_stack_args(files, bbox="1,2"), *pts], store, "'1,2'")
    _refused(["samples", *base, "--polygons", str(files["not.json"])], store, "not.json", "not valid JSON")
    _refused(["samples", *base, "--polygons", str(files["not_geojson.geojson"])], store, "not GeoJSON")
    _refused(["samples", *base, "--polygons", str(files["points.geojson"])], store, "Point", "Polygon")
    _refused(["samples", *base, "--polygons", str(files["unlabelled.geojson"])], store, "label=None")


def test_publish_refuses(store: Path) -> None:
    _refused(["publish", "--api", "http://127.0.0.1:9", "--pgstac"], store, "choose one target")
    _refused(["publish", "--api", "ftp://stac.example"], store, "ftp")
    _refused(["publish", "--dsn", "mysql://db/x"], store, "mysql", "postgresql")
    _refused(["publish", "--collections", "../up"], store, "../up")
    _refused(["publish", "--api", "http://127.0.0.1:9"], store, "nothing to publish")


TRAIN_TABLES = [
    ("/no/such/table.parquet", ["/no/such/table.parquet", "does not exist"]),
    ("csv_named.parquet", ["csv_named.parquet", "not a Parquet file"]),
    ("table.xlsx", ["table.xlsx", "unknown format"]),
    ("string_feature.parquet", ["NDVI_1", "numbers"]),
    ("string_labels.parquet", ["label", "numbers"]),
    ("unknown_code.parquet", ["[99]", "clcplus-backbone-ras"]),
    ("one_class.parquet", ["only 1 class"]),
    ("rare_class.parquet", ["[1]", "fewer than 2 samples"]),
]


@pytest.mark.parametrize(("name", "expected"), TRAIN_TABLES, ids=[n for n, _ in TRAIN_TABLES])
def test_train_tempcnn_refuses_bad_tables(
    name: str, expected: list[str], files: dict[str, Path], tmp_path: Path, store: Path
) -> None:
    samples = files.get(name, Path(name))
    out = tmp_path / "model"
    _refused(
        ["train", "tempcnn", "--samples", str(samples), "--out", str(out), "--epochs", "1"], store, *expected
    )
    assert not out.exists()


@pytest.mark.parametrize("architecture", ["unet", "impervious"])
def test_train_patch_models_refuse_missing_inputs(architecture: str, tmp_path: Path, store: Path) -> None:
    out = tmp_path / "model"
    _refused(
        ["train", architecture, "--samples", str(tmp_path / "none.npz"), "--out", str(out)], store, "none.npz"
    )
    _refused(["train", architecture, "--out", str(out)], store)
    assert not out.exists()


def test_services_and_demo_refuse(store: Path) -> None:
    _refused(["services", "api", "--port", "80"], store, "--port", "1024..65535")
    _refused(["demo", "--size-m", "5"], store, "--size-m")
    _refused(["demo", "--epochs", "0"], store, "--epochs", "at least 1")


def test_a_runtime_failure_exits_1_with_one_line(tmp_path: Path, store: Path) -> None:
    (store / "catalog/collections").mkdir(parents=True)
    (store / "catalog/collections/x.json").write_text("{}")
    res = CliRunner().invoke(
        app, ["publish", "--api", "http://127.0.0.1:9", "--collections", "catalog/collections"]
    )
    assert res.exit_code == FAILED, res.output
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "127.0.0.1:9" in err


def test_mapping_of_error_kinds() -> None:
    import pydantic

    from landstack.catalog.errors import SpecError
    from landstack.models.errors import RegistryError, SamplesError
    from landstack.pipelines.errors import AssetReadError, BadInputError
    from landstack.storage import StoreError

    class M(pydantic.BaseModel):
        n: int

    with pytest.raises(pydantic.ValidationError) as info:
        M(n="x")  # type: ignore[arg-type]
    code, message = classify(info.value)  # type: ignore[misc]
    assert code == BAD_INPUT and "n:" in message and "'x'" in message and "\n" not in message
    assert classify(BadInputError("a\nb")) == (BAD_INPUT, "a; b")
    assert classify(SpecError("p", "l", "f", "bad"))[0] == BAD_INPUT  # type: ignore[index]
    assert classify(SamplesError("t"))[0] == BAD_INPUT  # type: ignore[index]
    assert classify(AssetReadError("x"))[0] == FAILED  # type: ignore[index]
    assert classify(RegistryError("x"))[0] == FAILED  # type: ignore[index]
    missing = StoreError("s3://b/k does not exist")
    missing.__cause__ = FileNotFoundError()
    broken = StoreError("cannot write")
    broken.__cause__ = OSError("disk full")
    assert classify(missing)[0] == BAD_INPUT and classify(broken)[0] == FAILED  # type: ignore[index]
    assert classify(RuntimeError("a bug")) is None


def test_real_process_prints_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {"LANDSTACK_STORE_URL": (tmp_path / "s").as_uri(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "landstack.pipelines", "synth", "--bbox", "1,2,3"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: --bbox '1,2,3': needs 4 numbers minx,miny,maxx,maxy, got 3"
    ), proc.stderr
    assert proc.stdout == "" and not (tmp_path / "s").exists()
