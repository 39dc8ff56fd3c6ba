"""`landstack catalog build` writes every collection and every record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from typer.testing import CliRunner

from landstack.catalog import get_layer, layer_ids
from landstack.catalog.symbology import attribute_table, aux_xml, colormap
from landstack.pipelines.cli import app


def test_catalog_build_cli(tmp_path: Path, schemas: ModuleType) -> None:
    result = CliRunner().invoke(app, ["catalog", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    ids = layer_ids()
    assert sorted(p.stem for p in (tmp_path / "collections").glob("*.json")) == sorted(ids)
    assert sorted(p.stem for p in (tmp_path / "inspire").glob("*.xml")) == sorted(ids)
    doc = json.loads((tmp_path / "collections" / "clcplus-backbone-ras.json").read_text())
    href = next(link["href"] for link in doc["links"] if link["rel"] == "describedby")
    assert (tmp_path / "collections" / href).resolve() == (tmp_path / "inspire" / "clcplus-backbone-ras.xml")
    assert schemas.validate_iso19139(tmp_path / "inspire" / "emc-built-nres-3ss.xml") == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_catalog_build_with_api_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "build", "--out", str(tmp_path), "--api-url", "http://x:1/"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "collections" / "cisc-classes.json").read_text())
    assert {"rel": "describedby", "href": "http://x:1/collections/cisc-classes/inspire.xml"}.items() <= next(
        link for link in doc["links"] if link["rel"] == "describedby"
    ).items()


def test_help_everywhere() -> None:
    for args in ([], ["catalog"], ["catalog", "build"], ["services"]):
        out = subprocess.run(
            [sys.executable, "-m", "landstack.pipelines", *args, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Usage" in out


def test_colormap_and_attribute_table() -> None:
    _, ras = get_layer("clcplus-backbone-ras")
    cmap = colormap(ras)
    assert cmap[10] == (0, 128, 255, 255) and cmap[255][3] == 0
    rows = attribute_table(ras, {1: 300, 10: 700, 255: 5}, pixel_area_m2=100.0)
    assert rows[0] == {"Value": 1, "Count": 300, "Class_name": "Sealed", "Area_km2": 0.03, "Area_perc": 30.0}
    xml = aux_xml(ras, rows)
    assert "<Name>Class_name</Name>" in xml and "<F>Water</F>" in xml
    _, imd = get_layer("hrl-imperviousness-imd")
    cmap = colormap(imd)
    assert len(cmap) == 102 and cmap[0] == (240, 240, 240, 255) and cmap[100] == (168, 0, 0, 255)
