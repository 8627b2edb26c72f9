"""Model identity: weight files hashed in full (memoised by file identity), settings that change
the numbers in the key, and the mock's script hashed by value."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import contam.models.identity as identity
from contam.models.base import ModelIdentity, ScoreResult
from contam.models.identity import DigestMemo, folder_fingerprint, folder_identity
from contam.models.mock import MockModel

SIZE = 3 << 20


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(root))
    monkeypatch.setattr(identity, "MEMO_MIN_BYTES", 1 << 20)  # memoise the small test weights
    return root


def model_folder(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (root / "model.safetensors").write_bytes(bytes(range(256)) * (SIZE // 256))
    return root


def flip_middle_byte(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.seek(SIZE // 2)
        old = fh.read(1)
        fh.seek(SIZE // 2)
        fh.write(bytes([old[0] ^ 0xFF]))


def test_a_change_in_the_middle_of_the_weights_changes_the_fingerprint(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    before = folder_fingerprint(folder)
    flip_middle_byte(folder / "model.safetensors")
    assert folder_fingerprint(folder) != before


def test_digests_are_memoised_under_the_cache_dir(
    tmp_path: Path, _cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "RACY_NS", 0)
    weights = model_folder(tmp_path / "m") / "model.safetensors"
    first = DigestMemo()
    assert first.path == _cache_dir / "digests.sqlite"
    digest = first.digest(weights)
    assert first.hashed == 1 and first.path.is_file()
    again = DigestMemo()  # as a later process would
    assert again.digest(weights) == digest and again.hashed == 0


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "RACY_NS", 0)
    weights = model_folder(tmp_path / "m") / "model.safetensors"
    digest = DigestMemo().digest(weights)
    st = weights.stat()
    time.sleep(0.05)  # past the file system's timestamp tick
    flip_middle_byte(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored, ctime cannot be
    memo = DigestMemo()
    assert memo.digest(weights) != digest and memo.hashed == 1


def test_a_just_written_file_is_not_memoised(tmp_path: Path) -> None:
    weights = model_folder(tmp_path / "m") / "model.safetensors"
    DigestMemo().digest(weights)
    memo = DigestMemo()
    memo.digest(weights)
    assert memo.hashed == 1, "a file modified within the racy window is hashed again"


def test_settings_that_change_the_numbers_are_in_the_key(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    fp32 = folder_identity("hf", folder, settings={"dtype": "float32"})
    bf16 = folder_identity("hf", folder, settings={"dtype": "bfloat16"})
    assert fp32.fingerprint == bf16.fingerprint and fp32.key != bf16.key
    assert "dtype=bfloat16" in bf16.key
    plain = ModelIdentity(backend="hf", name="x", fingerprint="f")
    assert plain.key == "hf:x:f" and plain.weights_fingerprinted


def test_mock_identity_hashes_script_values() -> None:
    a = ScoreResult(tokens=("x",), logprobs=(-1.0,), bos=True)
    b = ScoreResult(tokens=("x",), logprobs=(-2.0,), bos=True)
    assert MockModel(score_script={"x": a}).identity.key != MockModel(score_script={"x": b}).identity.key
    assert MockModel(score_script={"x": a}).identity.key == MockModel(score_script={"x": a}).identity.key

    def other_generate(request: object) -> object:
        raise AssertionError

    assert MockModel(generate_fn=other_generate).identity.key != MockModel().identity.key  # type: ignore[arg-type]
