"""`landstack step list / schema / run`: the registry, the schemas, and bad JSON input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from landstack.pipelines.cli import app
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.steps import list_steps, run_step
from landstack.storage import ObjectStore

from .conftest import snapshot, step_run

STEPS = {"synth-archive", "features", "samples", "clean-labels", "train", "evaluate", "register", "publish"}


def test_list_names_every_step_with_its_summary() -> None:
    res = CliRunner().invoke(app, ["step", "list"])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.stdout.splitlines()}
    assert set(lines) >= STEPS  # other groups add theirs
    for s in list_steps():
        assert s.summary and s.summary in lines[s.name]


def test_schema_gives_input_and_output_json_schema() -> None:
    res = CliRunner().invoke(app, ["step", "schema", "train"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["step"] == "train"
    inp, out = doc["input"], doc["output"]
    assert inp["type"] == "object" and inp["additionalProperties"] is False
    assert {"architecture", "samples", "epochs", "force"} <= set(inp["properties"])
    assert inp["required"] == ["architecture"]
    assert {"model_url", "metrics_url", "targets_met"} <= set(out["properties"])
    # every step's schemas are plain JSON
    for name in STEPS:
        res = CliRunner().invoke(app, ["step", "schema", name])
        assert (
            res.exit_code == 0 and json.loads(res.stdout)["input"]["properties"]["force"]["default"] is False
        )


def test_schema_of_an_unknown_step_is_bad_input() -> None:
    res = CliRunner().invoke(app, ["step", "schema", "no-such-step"])
    assert res.exit_code == 2
    assert "unknown step 'no-such-step'" in res.stderr and "train" in res.stderr


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("train", "{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1"),
        ("train", "[1, 2]", "needs a JSON object as input, got list"),
        ("train", "{}", "field 'architecture' is missing: add it"),
        ("train", '{"architecture": "tempcnn", "samples": "s.parquet", "epochs": "many"}', "field 'epochs'"),
        ("train", '{"architecture": "resnet", "samples": "s.parquet"}', "field 'architecture'"),
        ("train", '{"architecture": "tempcnn"}', "a TempCNN needs 'samples'"),
        (
            "train",
            '{"architecture": "tempcnn", "samples": "s.parquet", "epoch": 3}',
            "field 'epoch' is not an input",
        ),
        (
            "synth-archive",
            '{"bbox": [1, 2, 0, 3], "start": "2023-01-01", "end": "2023-02-01"}',
            "minx must be below maxx",
        ),
        (
            "synth-archive",
            '{"bbox": [0, 0, 1, 1], "start": "2023-05-01", "end": "2023-02-01"}',
            "is before start",
        ),
        ("features", '{"bbox": [0, 0, 1, 1], "year": 2023}', "exactly one of 'api_url'"),
        (
            "features",
            '{"bbox": [0, 0, 1, 1], "year": 2023, "catalog_url": "c.json", "target_crs": "EPSG:99999"}',
            "target_crs 'EPSG:99999': is not a known CRS",
        ),
        (
            "features",
            '{"bbox": [0, 0, 1, 1], "year": 2023, "api_url": "ftp://x"}',
            "scheme 'ftp' is not supported",
        ),
        ("no-such-step", "{}", "unknown step 'no-such-step'; known steps: "),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    name: str, raw: str, expected: str, tmp_path: Path, store: ObjectStore
) -> None:
    before = snapshot(tmp_path / "store")
    res = step_run(name, None, tmp_path, raw=raw)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert expected in res.stderr
    assert res.stderr.startswith("error: ") or "\nerror: " in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert snapshot(tmp_path / "store") == before  # nothing written


def test_a_missing_input_object_is_bad_input(tmp_path: Path, store: ObjectStore) -> None:
    gone = (tmp_path / "nowhere.parquet").as_uri()
    res = step_run("train", {"architecture": "tempcnn", "samples": gone}, tmp_path)
    assert res.exit_code == 2, res.stderr
    assert f"{gone} does not exist" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "store" / "runs").exists()


def test_a_failing_step_exits_1(tmp_path: Path, store: ObjectStore) -> None:
    # a model file that is not one: the step starts and fails
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    test = tmp_path / "test.csv"
    test.write_text("label,B04_0\n1,0.5\n")
    res = step_run("evaluate", {"model_url": bad.as_uri(), "test_url": test.as_uri()}, tmp_path)
    assert res.exit_code in (1, 2) and "Traceback" not in res.stderr
    assert "is not a landstack model file" in res.stderr


def test_input_from_stdin_and_output_file(tmp_path: Path, store: ObjectStore) -> None:
    out = tmp_path / "out" / "result.json"
    res = CliRunner().invoke(
        app, ["step", "run", "no-such-step", "--input", "-", "--output", str(out)], input="{}"
    )
    assert res.exit_code == 2 and "unknown step" in res.stderr and not out.exists()
    res = CliRunner().invoke(app, ["step", "run", "train", "--input", "-"], input="{oops")
    assert res.exit_code == 2 and "from stdin is not JSON" in res.stderr


def test_run_step_validates_before_running(store: ObjectStore) -> None:
    with pytest.raises(BadInputError, match="field 'year' is missing"):
        run_step("features", {"bbox": [0, 0, 1, 1], "catalog_url": "file:///x/collection.json"})
    with pytest.raises(BadInputError, match="unknown step"):
        run_step("nope", {})
