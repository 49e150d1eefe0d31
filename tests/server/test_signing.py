"""Signed links: signatures, expiry, malformed parameters and the signing secret file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from latentcast.server.settings import Settings
from latentcast.server.signing import (
    SECRET_FILE_NAME, InvalidLink, check_link, link_query, load_signing_secret, sign_link,
)

SECRET = b"k" * 32
VIDEO_ID = "ab" * 16
EXPIRES = 2_000_000_000


def test_check_link_accepts_valid_signature() -> None:
    signature = sign_link(SECRET, VIDEO_ID, EXPIRES)
    assert check_link(SECRET, VIDEO_ID, str(EXPIRES), signature, now=EXPIRES - 1) == EXPIRES


def test_check_link_accepts_uppercase_hex() -> None:
    signature = sign_link(SECRET, VIDEO_ID, EXPIRES).upper()
    assert check_link(SECRET, VIDEO_ID, str(EXPIRES), signature, now=EXPIRES) == EXPIRES


def test_check_link_rejects_expired() -> None:
    signature = sign_link(SECRET, VIDEO_ID, EXPIRES)
    with pytest.raises(InvalidLink, match="expired at 2033-05-18T03:33:20"):
        check_link(SECRET, VIDEO_ID, str(EXPIRES), signature, now=EXPIRES + 1)


@pytest.mark.parametrize("video_id,expires,secret", [
    ("cd" * 16, EXPIRES, SECRET),
    (VIDEO_ID, EXPIRES + 1, SECRET),
    (VIDEO_ID, EXPIRES, b"x" * 32),
], ids=["other-video", "other-expiry", "other-secret"])
def test_check_link_rejects_changed_fields(video_id: str, expires: int, secret: bytes) -> None:
    signature = sign_link(SECRET, VIDEO_ID, EXPIRES)
    with pytest.raises(InvalidLink, match="does not match"):
        check_link(secret, video_id, str(expires), signature, now=0)


@pytest.mark.parametrize("expires,signature", [
    (None, "00"), (str(EXPIRES), None), (None, None),
])
def test_check_link_rejects_missing_parameter(expires: str | None, signature: str | None) -> None:
    with pytest.raises(InvalidLink, match="needs both"):
        check_link(SECRET, VIDEO_ID, expires, signature, now=0)


@pytest.mark.parametrize("expires", ["-5", "1e9", "soon", "9" * 13, ""])
def test_check_link_rejects_malformed_expires(expires: str) -> None:
    with pytest.raises(InvalidLink, match="invalid 'expires'"):
        check_link(SECRET, VIDEO_ID, expires, "00", now=0)


def test_check_link_rejects_non_ascii_signature() -> None:
    with pytest.raises(InvalidLink, match="does not match"):
        check_link(SECRET, VIDEO_ID, str(EXPIRES), "é" * 64, now=0)


def test_link_query_names_both_parameters() -> None:
    query = link_query(SECRET, VIDEO_ID, EXPIRES)
    assert query == f"expires={EXPIRES}&signature={sign_link(SECRET, VIDEO_ID, EXPIRES)}"


def test_secret_file_created_private(tmp_path: Path) -> None:
    secret = load_signing_secret(Settings(data_dir=tmp_path / "data"))
    path = tmp_path / "data" / SECRET_FILE_NAME
    assert len(secret) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in path.parent.iterdir()] == [SECRET_FILE_NAME]


def test_secret_file_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert load_signing_secret(settings) == load_signing_secret(settings)


def test_secret_file_too_short_rejected(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE_NAME).write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 32 characters; delete the file"):
        load_signing_secret(Settings(data_dir=tmp_path))


def test_secret_file_readable_by_others_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / SECRET_FILE_NAME
    path.write_text("z" * 64)
    path.chmod(0o644)
    load_signing_secret(Settings(data_dir=tmp_path))
    assert "other users can read it" in caplog.text


def test_secret_setting_overrides_file(tmp_path: Path) -> None:
    secret = load_signing_secret(Settings(data_dir=tmp_path, signing_secret="q" * 40))
    assert secret == b"q" * 40
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_secret_setting_too_short_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shorter than 32 characters"):
        Settings(data_dir=tmp_path, signing_secret="q" * 31)
