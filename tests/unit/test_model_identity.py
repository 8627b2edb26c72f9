"""Model identity: weight files hashed in full (memoised by file identity), settings that change
the numbers in the key, and the mock's script hashed by value."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import contam.models.identity as identity
from contam.models.base import ModelIdentity, ScoreResult
from contam.models.identity import DigestMemo, folder_fingerprint, folder_identity, tokenizer_fingerprint
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


# Files a tokenizer or processor loader may read, beyond the few every folder has: SentencePiece
# models under any name, WordPiece and other vocab files, tiktoken ranks, Mistral's tekken.json
# and versioned tokenizer.model.vN, a remote-code tokenizer, chat templates and processor configs.
TOKENIZER_FILES = [
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "cl100k_base.tiktoken",
    "qwen.tiktoken",
    "tekken.json",
    "tokenizer.model.v3",
    "source.spm",
    "bpe.codes",
    "tokenization_custom.py",
    "chat_template.json",
    "additional_chat_templates/tool_use.jinja",
    "preprocessor_config.json",
    "processor_config.json",
]


@pytest.mark.parametrize("name", TOKENIZER_FILES)
def test_an_edit_to_any_tokenizer_file_changes_both_fingerprints(tmp_path: Path, name: str) -> None:
    folder = model_folder(tmp_path / "m")
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"first version of " + name.encode())
    model_before, tok_before = folder_fingerprint(folder), tokenizer_fingerprint(folder)
    assert tok_before is not None
    path.write_bytes(b"second version of " + name.encode())
    assert folder_fingerprint(folder) != model_before
    assert tokenizer_fingerprint(folder) != tok_before


@pytest.mark.parametrize(
    "name",
    ["README.md", "LICENSE", "LICENSE.txt", "USE_POLICY.md", ".gitattributes", "figure.png", "tf_model.h5"],
)
def test_files_no_backend_reads_leave_the_fingerprints_alone(tmp_path: Path, name: str) -> None:
    folder = model_folder(tmp_path / "m")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    model_before, tok_before = folder_fingerprint(folder), tokenizer_fingerprint(folder)
    (folder / name).write_bytes(b"anything at all")
    assert folder_fingerprint(folder) == model_before
    assert tokenizer_fingerprint(folder) == tok_before


def test_the_model_config_is_in_the_model_fingerprint_not_the_tokenizers(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    model_before, tok_before = folder_fingerprint(folder), tokenizer_fingerprint(folder)
    (folder / "config.json").write_text('{"model_type": "llama", "rope_theta": 1.0}', encoding="utf-8")
    assert folder_fingerprint(folder) != model_before
    assert tokenizer_fingerprint(folder) == tok_before


def test_a_folder_without_tokenizer_files_has_no_tokenizer_fingerprint(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    (folder / "generation_config.json").write_text("{}", encoding="utf-8")
    (folder / "README.md").write_text("# a model", encoding="utf-8")
    assert tokenizer_fingerprint(folder) is None


def test_a_missing_folder_is_named_as_no_model_folder(tmp_path: Path) -> None:
    from contam.errors import ModelSpecError

    assert tokenizer_fingerprint(tmp_path / "absent") is None
    with pytest.raises(ModelSpecError, match="not a model folder"):
        folder_identity("hf", tmp_path / "absent")
