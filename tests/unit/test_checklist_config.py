"""release.yaml validation: every mistake is an InputError naming the file, the line and the key,
and the CLI turns it into exit code 2 before any model is called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.checklist import load_checklist
from contam.cli.main import cli
from contam.errors import InputError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rows = [
        {"id": f"{p}{i}", "text": f"item {i} of {p}", "partition": p} for p in ("a", "b") for i in range(3)
    ]
    (tmp_path / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "release.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
model: mock
benchmarks:
  - name: bench.jsonl
    reference: b
probes:
  - loss
  - name: min_k
    params:
      k: 0.3
alpha: 0.01
"""


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_checklist(path)
    return info.value


def test_a_good_file_loads_with_paths_resolved_against_its_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # not the YAML's folder
    config = load_checklist(write(folder, GOOD))
    assert config.benchmarks[0].name == str((folder / "bench.jsonl").resolve())
    assert config.benchmarks[0].reference == "b"  # a partition name stays a name
    assert [(p.name, p.params) for p in config.probes] == [("loss", {}), ("min_k", {"k": 0.3})]
    assert config.alpha == 0.01 and config.seed == 0 and config.concurrency == 4
    assert config.source == folder / "release.yaml"


def test_model_paths_are_relative_to_the_yaml(folder: Path) -> None:
    (folder / "seen.json").write_text("[]", encoding="utf-8")
    config = load_checklist(write(folder, GOOD.replace("model: mock", "model: mock:seen=seen.json")))
    assert config.model == f"mock:seen={(folder / 'seen.json').resolve()}"
    config = load_checklist(write(folder, GOOD.replace("model: mock", "model: hf:models/tiny?device=cpu")))
    assert config.model == f"hf:{(folder / 'models/tiny').resolve()}?device=cpu"


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        # an unknown key at the top, and one inside a benchmark entry
        (GOOD + "aplha: 0.05\n", 11, "aplha", "unknown key"),
        (GOOD.replace("    reference: b\n", "    reference: b\n    partition: a\n"), 5, "benchmarks.0.partition",
         "unknown key"),
        # a bad type, a bad alpha, a bad concurrency
        (GOOD.replace("alpha: 0.01", "alpha: high"), 10, "alpha", "number"),
        (GOOD.replace("alpha: 0.01", "alpha: 1.5"), 10, "alpha", "less than 1"),
        (GOOD.replace("alpha: 0.01", "alpha: 0"), 10, "alpha", "greater than 0"),
        (GOOD + "concurrency: 0\n", 11, "concurrency", "greater than or equal to 1"),
        # an unknown probe, a probe parameter out of range, an unknown parameter
        (GOOD.replace("  - loss\n", "  - lossy\n"), 6, "probes.0.name", "unknown probe 'lossy'"),
        (GOOD.replace("k: 0.3", "k: 2.0"), 9, "probes.1.params.k", "less than or equal to 1"),
        (GOOD.replace("k: 0.3", "kk: 0.3"), 9, "probes.1.params.kk", "Extra inputs"),
        (GOOD.replace("  - loss\n", "  - loss\n  - loss\n"), 5, "probes", "listed twice"),
        # files that are not there
        (GOOD.replace("name: bench.jsonl", "name: nothere.jsonl"), 3, "benchmarks.0.name", "no such file"),
        (GOOD.replace("reference: b", "reference: held/out.jsonl"), 4, "benchmarks.0.reference", "no such file"),
        (GOOD + "indexes: [idx]\n", 11, "indexes", "no such index folder"),
        # a missing required key (reported at its parent), a bad model spec, bad field mapping
        (GOOD.replace("model: mock\n", ""), None, "model", "Field required"),
        (GOOD.replace("model: mock", "model: openai:tiny"), 1, "model", "openai:NAME@BASE_URL"),
        (GOOD.replace("    reference: b\n", "    reference: b\n    fields: {colour: c}\n"), 5,
         "benchmarks.0.fields", "unknown item field"),
        (GOOD.replace("benchmarks:\n  - name: bench.jsonl\n    reference: b\n", "benchmarks: []\n"), 2,
         "benchmarks", "at least 1"),
    ],
)  # fmt: skip
def test_every_mistake_names_file_line_and_key(
    folder: Path, text: str, line: int | None, key: str, words: str
) -> None:
    path = write(folder, text)
    error = error_of(path)
    assert error.path == str(path)
    assert error.field == key
    assert words in error.message
    if line is not None:
        assert error.line == line
    assert str(error).startswith(f"{path}:")


def test_not_yaml_and_not_a_mapping(folder: Path) -> None:
    error = error_of(write(folder, "model: [mock\n"))
    assert error.line is not None and "not valid YAML" in error.message
    error = error_of(write(folder, "- mock\n"))
    assert error.line == 1 and "mapping" in error.message
    with pytest.raises(InputError, match="cannot read"):
        load_checklist(folder / "absent.yaml")


def test_cli_exits_2_naming_file_line_and_key(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(folder / "cache"))
    path = write(folder, GOOD.replace("k: 0.3", "k: 2.0"))
    result = CliRunner().invoke(cli, ["checklist", str(path), "--out", str(folder / "out"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"{path}:9: field 'probes.1.params.k'" in result.output
    assert not (folder / "out").exists()  # nothing ran, nothing written


def test_a_config_built_in_code_checks_probe_parameters_too() -> None:
    from pydantic import ValidationError

    from contam.checklist import ChecklistConfig

    with pytest.raises(ValidationError, match=r"min_k\.k: Input should be less than or equal to 1"):
        ChecklistConfig.model_validate(
            {
                "model": "mock",
                "benchmarks": [{"name": "humaneval"}],
                "probes": [{"name": "min_k", "params": {"k": 2}}],
            }
        )


def test_an_out_that_is_a_file_is_refused_before_anything_runs(folder: Path) -> None:
    (folder / "taken").write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, ["checklist", str(write(folder, GOOD)), "--out", str(folder / "taken")])
    assert result.exit_code == 2, result.output
    assert "'--out'" in result.output and "is a file" in result.output
    # and a folder that cannot be created
    result = CliRunner().invoke(
        cli, ["checklist", str(write(folder, GOOD)), "--out", str(folder / "taken" / "sub")]
    )
    assert result.exit_code == 2, result.output
    assert f"{folder / 'taken' / 'sub'}: field '--out': cannot create the folder" in result.output
