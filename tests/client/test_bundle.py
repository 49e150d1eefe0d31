"""Decoder bundle: manifest, hash verification, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentcast_client.bundle import (
    BUNDLE_FORMAT_VERSION,
    DECODER_FILE,
    INTER_FILE,
    MANIFEST,
    TABLES_FILE,
    Manifest,
    load_bundle,
    sha256_hex,
    write_manifest,
)
from latentcast_client.entropy import FREQUENCY_BITS, EntropyTables
from latentcast_client.errors import BundleError
from latentcast_client.inter import CONTEXTS, InterTables
from latentcast_client.stream import FORMAT_VERSION

TABLES = EntropyTables(offsets=[0, -1], frequencies=[[1 << FREQUENCY_BITS], [1 << 15, 1 << 15]])


def make_bundle(folder: Path, latent_channels: int = 2) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DECODER_FILE).write_bytes(b"not really onnx, but hashed like it")
    (folder / TABLES_FILE).write_text(TABLES.to_json())
    return write_manifest(folder, "test-model", latent_channels, 16, FORMAT_VERSION)


def test_write_manifest_returns_its_sha256(tmp_path):
    sha256 = make_bundle(tmp_path)
    assert sha256 == sha256_hex((tmp_path / MANIFEST).read_bytes())


def test_load_verified_bundle(tmp_path):
    sha256 = make_bundle(tmp_path)
    bundle = load_bundle(tmp_path, expected_sha256=sha256)
    assert bundle.sha256 == sha256
    assert bundle.manifest.model_id == "test-model"
    assert bundle.manifest.stride == 16
    assert bundle.decoder_path == tmp_path / DECODER_FILE


def test_load_without_expected_sha(tmp_path):
    sha256 = make_bundle(tmp_path)
    assert load_bundle(str(tmp_path)).sha256 == sha256


def test_bundle_tables(tmp_path):
    make_bundle(tmp_path)
    assert load_bundle(tmp_path).tables() == TABLES


def test_tables_channel_mismatch_detected(tmp_path):
    make_bundle(tmp_path, latent_channels=3)
    with pytest.raises(BundleError, match="2 channels but the manifest declares 3"):
        load_bundle(tmp_path).tables()


@pytest.mark.parametrize("name", [DECODER_FILE, TABLES_FILE])
def test_altered_file_detected(tmp_path, name):
    make_bundle(tmp_path)
    with (tmp_path / name).open("ab") as file:
        file.write(b" ")
    with pytest.raises(BundleError, match=f"bundle file {name} has sha256"):
        load_bundle(tmp_path)


@pytest.mark.parametrize("name", [DECODER_FILE, TABLES_FILE])
def test_missing_file_detected(tmp_path, name):
    make_bundle(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(BundleError, match=f"bundle file {name} is missing"):
        load_bundle(tmp_path)


def test_missing_manifest_detected(tmp_path):
    make_bundle(tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(BundleError, match="not a decoder bundle"):
        load_bundle(tmp_path)


def test_wrong_expected_sha_detected(tmp_path):
    make_bundle(tmp_path)
    with pytest.raises(BundleError, match="expected 00000000"):
        load_bundle(tmp_path, expected_sha256="0" * 64)


def test_write_manifest_requires_files(tmp_path):
    (tmp_path / TABLES_FILE).write_text(TABLES.to_json())
    with pytest.raises(BundleError, match="decoder.onnx is missing"):
        write_manifest(tmp_path, "m", 2, 16, FORMAT_VERSION)


def test_manifest_round_trip():
    manifest = Manifest("m-1", 8, 16, FORMAT_VERSION, {DECODER_FILE: "a" * 64, TABLES_FILE: "b" * 64})
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def manifest_bytes(**changes) -> bytes:
    data = {
        "format_version": BUNDLE_FORMAT_VERSION, "stream_format_version": FORMAT_VERSION, "model_id": "m",
        "latent_channels": 8, "stride": 16, "files": {DECODER_FILE: "a" * 64, TABLES_FILE: "b" * 64},
    }
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    "data,message",
    [
        (b"{", "manifest is not valid"),
        (manifest_bytes(stride="x"), "manifest is not valid"),
        (manifest_bytes(files=[]), "manifest is not valid"),
        (manifest_bytes(format_version=BUNDLE_FORMAT_VERSION + 1), "Upgrade latentcast-client"),
        (manifest_bytes(files={DECODER_FILE: "a" * 64}), "no hash for entropy.json"),
    ],
    ids=["json", "stride", "files-type", "version", "missing-hash"],
)
def test_invalid_manifest_rejected(data, message):
    with pytest.raises(BundleError, match=message):
        Manifest.from_bytes(data)


INTER = InterTables(ranges=[0, 0], frequencies=[[[1 << FREQUENCY_BITS]] * CONTEXTS] * 2, deadzone=0.7)


def make_inter_bundle(folder: Path, tables: InterTables = INTER) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INTER_FILE).write_text(tables.to_json())
    return make_bundle(folder)


def test_manifest_lists_residual_tables(tmp_path):
    make_inter_bundle(tmp_path)
    assert load_bundle(tmp_path).manifest.listed_files() == (DECODER_FILE, TABLES_FILE, INTER_FILE)


def test_bundle_residual_tables(tmp_path):
    make_inter_bundle(tmp_path)
    assert load_bundle(tmp_path).inter_tables() == INTER


def test_bundle_without_residual_tables(tmp_path):
    make_bundle(tmp_path)
    assert load_bundle(tmp_path).inter_tables() is None


def test_altered_residual_tables_detected(tmp_path):
    make_inter_bundle(tmp_path)
    with (tmp_path / INTER_FILE).open("a") as file:
        file.write(" ")
    with pytest.raises(BundleError, match=f"bundle file {INTER_FILE} has sha256"):
        load_bundle(tmp_path)


def test_missing_residual_tables_detected(tmp_path):
    make_inter_bundle(tmp_path)
    (tmp_path / INTER_FILE).unlink()
    with pytest.raises(BundleError, match=f"bundle file {INTER_FILE} is missing"):
        load_bundle(tmp_path)


def test_residual_tables_channel_mismatch_detected(tmp_path):
    make_inter_bundle(tmp_path, InterTables(ranges=[0], frequencies=[[[1 << FREQUENCY_BITS]] * CONTEXTS], deadzone=0.7))
    with pytest.raises(BundleError, match="residual tables have 1 channels but the manifest declares 2"):
        load_bundle(tmp_path).inter_tables()
