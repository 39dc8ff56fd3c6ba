"""Delivery: COG validity, colour map and attribute table read back by GDAL, quicklook, S3, mosaic memory."""

from __future__ import annotations

import ctypes
import hashlib
import io
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from landstack.catalog import symbology
from landstack.pipelines.products import codes, cog, mosaic, quicklook
from landstack.pipelines.products.errors import SpecMismatchError
from landstack.pipelines.products.raster import Grid
from landstack.storage import ObjectStore, S3Options, gdal_env

S3_ENDPOINT = "http://127.0.0.1:55900"


def _gdal() -> ctypes.CDLL:
    """The GDAL library rasterio runs on, for the calls rasterio does not wrap (raster attribute tables)."""
    libs = Path(rasterio.__file__).parent.parent / "rasterio.libs"
    found = sorted(libs.glob("libgdal*.so*"))
    if not found:
        pytest.skip(f"no bundled libgdal under {libs}: cannot read attribute tables through GDAL's C API")
    lib = ctypes.CDLL(str(found[0]))
    for name, res, args in (
        ("GDALOpen", ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]),
        ("GDALClose", None, [ctypes.c_void_p]),
        ("GDALGetRasterBand", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
        ("GDALGetDefaultRAT", ctypes.c_void_p, [ctypes.c_void_p]),
        ("GDALGetRasterColorTable", ctypes.c_void_p, [ctypes.c_void_p]),
        ("GDALRATGetRowCount", ctypes.c_int, [ctypes.c_void_p]),
        ("GDALRATGetColumnCount", ctypes.c_int, [ctypes.c_void_p]),
        ("GDALRATGetNameOfCol", ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int]),
        ("GDALRATGetValueAsString", ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _gdal_rat(path: Path) -> tuple[list[dict[str, str]], bool]:
    """Rows of band 1's attribute table as GDAL reads it, and whether it has a colour table."""
    lib = _gdal()
    with rasterio.Env():  # drivers registered
        ds = lib.GDALOpen(str(path).encode(), 0)
        assert ds, f"GDAL cannot open {path}"
        try:
            band = lib.GDALGetRasterBand(ds, 1)
            has_ct = bool(lib.GDALGetRasterColorTable(band))
            rat = lib.GDALGetDefaultRAT(band)
            if not rat:
                return [], has_ct
            cols = [lib.GDALRATGetNameOfCol(rat, c).decode() for c in range(lib.GDALRATGetColumnCount(rat))]
            rows = [
                {col: lib.GDALRATGetValueAsString(rat, r, c).decode() for c, col in enumerate(cols)}
                for r in range(lib.GDALRATGetRowCount(rat))
            ]
            return rows, has_ct
        finally:
            lib.GDALClose(ds)


def _ras_tile(n: int = 1100) -> tuple[np.ndarray, Grid]:
    rng = np.random.default_rng(5)
    ras = np.repeat(np.repeat(rng.integers(1, 12, (n // 50 + 1, n // 50 + 1)), 50, 0), 50, 1)[:n, :n]
    ras = ras.astype(np.uint8)
    ras[:100, :] = 255
    ras[-50:, :] = 254
    return ras, Grid.from_origin("EPSG:3035", 4_000_000, 3_000_000, 10, n, n)


def test_classified_cog_is_valid_with_colour_map_overviews_and_rat(tmp_path: Path) -> None:
    spec = codes.layer(codes.CLCPLUS_RAS)
    ras, grid = _ras_tile()
    result = cog.write_cog(tmp_path / "ras.tif", spec, grid, ras)
    assert cog_validate(str(result.path), quiet=True)[0]
    with rasterio.open(result.path) as ds:
        assert ds.block_shapes == [(512, 512)] and ds.nodata == 255 and ds.overviews(1) == [2, 4]
        assert ds.compression.value == "DEFLATE" and ds.descriptions[0].startswith("RAS:")
        assert ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        # mode overviews only ever hold codes of the layer
        codes.check_codes(spec, ds.read(1, out_shape=(275, 275)))
        assert ds.colormap(1)[1] == (255, 1, 0, 255) == symbology.colormap(spec)[1]
        np.testing.assert_array_equal(ds.read(1), ras)
    rows, has_ct = _gdal_rat(result.path)
    assert has_ct
    values, counts = np.unique(ras, return_counts=True)
    assert [int(r["Value"]) for r in rows] == values.tolist()
    assert [int(r["Count"]) for r in rows] == counts.tolist()
    by_value = {int(r["Value"]): r for r in rows}
    assert by_value[1]["Class_name"] == "Sealed" and by_value[254]["Class_name"] == "Outside area"
    n1 = int(by_value[1]["Count"])
    assert float(by_value[1]["Area_km2"]) == pytest.approx(n1 * 100 / 1e6)
    valid = int((ras != 255).sum())
    assert float(by_value[1]["Area_perc"]) == pytest.approx(100 * n1 / valid, abs=1e-3)


def test_continuous_cog_uses_average_overviews_and_lzw(tmp_path: Path) -> None:
    spec = codes.layer(codes.CLCPLUS_RASDL)
    grid = Grid.from_origin("EPSG:3035", 4_000_000, 3_000_000, 10, 1100, 1100)
    data = np.random.default_rng(0).integers(0, 201, (1100, 1100)).astype(np.uint16)
    result = cog.write_cog(tmp_path / "rasdl.tif", spec, grid, data, compress="LZW")
    with rasterio.open(result.path) as ds:
        assert ds.dtypes[0] == "uint16" and ds.nodata == 65535 and ds.compression.value == "LZW"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("OVERVIEW_RESAMPLING", "AVERAGE") == "AVERAGE"
        ov = ds.read(1, out_shape=(550, 550))
    assert 90 < ov.mean() < 110  # an average of uniform 0..200, a mode would not be smooth
    rows, _ = _gdal_rat(result.path)
    assert {"Value", "Count", "Obs_count"} <= set(rows[0])


def test_cog_refuses_codes_outside_the_spec(tmp_path: Path) -> None:
    spec = codes.layer(codes.CLCPLUS_RAS)
    grid = Grid.from_origin("EPSG:3035", 0, 0, 10, 4, 4)
    with pytest.raises(SpecMismatchError, match="12"):
        cog.write_cog(tmp_path / "bad.tif", spec, grid, np.full((4, 4), 12, np.uint8))
    assert not (tmp_path / "bad.tif").exists()


def test_quicklook_png_has_class_colours_and_a_legend(tmp_path: Path) -> None:
    spec = codes.layer(codes.CLCPLUS_RAS)
    ras, grid = _ras_tile()
    result = cog.write_cog(tmp_path / "ras.tif", spec, grid, ras)
    png = Image.open(io.BytesIO(quicklook.render(result.path, spec, max_size=256)))
    assert png.format == "PNG" and png.height >= 256 and png.width > 256
    rgb = np.asarray(png.convert("RGB"))
    picture, legend = rgb[:, :256], rgb[:, 256:]
    class_colours = {tuple(int(c) for c in symbology.colormap(spec)[v][:3]) for v in range(1, 12)}
    seen = {tuple(int(c) for c in px) for px in picture.reshape(-1, 3)}
    assert len(class_colours & seen) >= 8
    assert (legend < 100).any()  # legend text


def test_continuous_quicklook(tmp_path: Path) -> None:
    spec = codes.layer(codes.HRL_IMD)
    grid = Grid.from_origin("EPSG:3035", 0, 0, 10, 300, 300)
    data = np.tile(np.arange(300) // 3, (300, 1)).astype(np.uint8)
    result = cog.write_cog(tmp_path / "imd.tif", spec, grid, data)
    png = Image.open(io.BytesIO(quicklook.render(result.path, spec, max_size=300)))
    rgb = np.asarray(png.convert("RGB"))[:, :300]
    assert tuple(rgb[10, 150]) != tuple(rgb[10, 290])


def test_cog_and_rat_written_to_s3_through_moto(tmp_path: Path) -> None:
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(endpoint_url=S3_ENDPOINT, key="testing", secret="testing")
    bucket = f"products-{uuid.uuid4().hex[:8]}"
    try:
        fs.mkdir(bucket)
    except Exception as e:  # moto not running
        pytest.skip(f"moto S3 at {S3_ENDPOINT} is not reachable ({e}); start it with `landstack services up`")
    s3 = S3Options(endpoint_url=S3_ENDPOINT, access_key_id="testing", secret_access_key="testing")
    store = ObjectStore(f"s3://{bucket}/root", s3)
    spec = codes.layer(codes.CLCPLUS_RAS)
    ras, grid = _ras_tile(600)
    key = "products/clcplus-backbone-ras/E40N30/ras.tif"
    result, hrefs = cog.deliver(store, key, spec, grid, ras)
    assert hrefs == {"rat": store.href(key + ".aux.xml"), "data": store.href(key)}
    fs.invalidate_cache()
    assert sorted(fs.find(f"{bucket}/root")) == [f"{bucket}/root/{key}", f"{bucket}/root/{key}.aux.xml"]
    local = tmp_path / "ras.tif"
    local.write_bytes(store.read_bytes(key))
    (tmp_path / "ras.tif.aux.xml").write_bytes(store.read_bytes(key + ".aux.xml"))
    assert cog_validate(str(local), quiet=True)[0]
    assert result.checksum == "1220" + hashlib.sha256(local.read_bytes()).hexdigest()
    rows, has_ct = _gdal_rat(local)
    assert has_ct and sum(int(r["Count"]) for r in rows) == ras.size
    # GDAL reads the COG straight from S3 too, and the quicklook is rendered from there
    with gdal_env(s3), rasterio.open(store.href(key)) as ds:
        np.testing.assert_array_equal(ds.read(1), ras)
        png = quicklook.render(store.href(key), spec, max_size=128)
        href = quicklook.put_quicklook(store, key.replace(".tif", ".png"), store.href(key), spec)
    assert png[:8] == store.read_bytes(key.replace(".tif", ".png"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert href == store.href(key.replace(".tif", ".png"))


def _source(path: Path, left: float, top: float, values: np.ndarray, nodata: int = 255) -> str:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:3035",
        transform=Affine(10, 0, left, 0, -10, top),
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="DEFLATE",
    ) as dst:
        dst.write(values, 1)
    return str(path)


def test_mosaic_is_seamless_and_memory_bounded(tmp_path: Path) -> None:
    spec = codes.layer(codes.CLCPLUS_RAS)
    n, half = 4096, 2048  # a 16 MB tile, 256 chunks of 256 x 256
    grid = Grid.from_origin("EPSG:3035", 4_000_000, 3_000_000, 10, n, n)
    expected = np.full((n, n), 255, np.uint8)
    sources = []
    for k, (r, c) in enumerate(((0, 0), (0, half), (half, 0), (half, half))):
        values = np.full((half + 100, half + 100), k + 1, np.uint8)  # 1 km overlap into the neighbours
        values[:10, :10] = 255  # a hole the next source fills
        sources.append(_source(tmp_path / f"src{k}.tif", 4_000_000 + c * 10, 3_000_000 - r * 10, values))
        window = expected[r : r + half + 100, c : c + half + 100]
        fill = (window == 255) & (values[: window.shape[0], : window.shape[1]] != 255)
        window[fill] = values[: window.shape[0], : window.shape[1]][fill]
    tracemalloc.start()
    try:
        result = cog.write_cog(
            tmp_path / "mosaic.tif", spec, grid, mosaic.mosaic_blocks(sources, grid, spec, 256)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {n * n / 2**20:.0f} MiB tile"
    with rasterio.open(result.path) as ds:
        np.testing.assert_array_equal(ds.read(1), expected)
    assert result.counts == {v: int(c) for v, c in zip(*np.unique(expected, return_counts=True), strict=True)}


def test_mosaic_warps_sources_on_another_grid(tmp_path: Path) -> None:
    spec = codes.layer(codes.CISC_CLASSES)
    grid = Grid.from_origin("EPSG:3035", 4_000_000, 3_000_000, 30, 100, 100)
    src = _source(tmp_path / "ten.tif", 4_000_000, 3_000_000, np.full((300, 300), 2, np.uint8))
    blocks = list(mosaic.mosaic_blocks([src], grid, spec, 64))
    assert all((b == 2).all() for _, b in blocks) and len(blocks) == 4
