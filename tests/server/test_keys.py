"""API keys: generation, hashing, their table in storage, and the `latentcast keys` command."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from latentcast.server.cli import main
from latentcast.server.keys import KEY_PREFIX, check_key_name, create_key, generate_key, hash_key
from latentcast.server.settings import DATABASE_NAME
from latentcast.server.storage import Storage, VideoStatus, new_video_id
from latentcast_client.video import VideoInfo

INFO = VideoInfo(width=176, height=144, fps=30.0, frame_count=4)


@pytest.fixture()
def storage(tmp_path: Path, database_url: str | None) -> Storage:
    """An opened Storage on SQLite, then on PostgreSQL, so the key queries run on both."""
    store = Storage(tmp_path, tmp_path / DATABASE_NAME, database_url)
    store.open()
    return store


def test_generated_key_format() -> None:
    key = generate_key()
    assert key.startswith(KEY_PREFIX)
    assert re.fullmatch(r"lc_[A-Za-z0-9_-]{43}", key)


def test_generated_keys_differ() -> None:
    assert generate_key() != generate_key()


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("lc_abc") == hashlib.sha256(b"lc_abc").hexdigest()


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there"])
def test_check_key_name_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="invalid key name"):
        check_key_name(name)


def test_check_key_name_strips_spaces() -> None:
    assert check_key_name("  ci runner ") == "ci runner"


def test_create_key_found_by_hash(storage: Storage) -> None:
    record, key = create_key(storage, "customer")
    assert storage.api_key_by_hash(hash_key(key)) == record
    assert record.key_hash == hash_key(key)


def test_sqlite_file_lacks_key_text(tmp_path: Path) -> None:
    storage = Storage(tmp_path, tmp_path / DATABASE_NAME)
    storage.open()
    _, key = create_key(storage, "customer")
    database = storage.database_path.read_bytes()
    assert key.encode() not in database
    assert hash_key(key).encode() in database


def test_unknown_key_hash_none(storage: Storage) -> None:
    assert storage.api_key_by_hash(hash_key("lc_missing")) is None


def test_revoke_key_sets_time(storage: Storage) -> None:
    record, _ = create_key(storage, "customer")
    revoked = storage.revoke_api_key(record.id)
    assert revoked is not None
    assert revoked.revoked
    assert not record.revoked


def test_revoke_twice_keeps_first_time(storage: Storage) -> None:
    record, _ = create_key(storage, "customer")
    first = storage.revoke_api_key(record.id)
    second = storage.revoke_api_key(record.id)
    assert second.revoked_at == first.revoked_at


def test_revoke_unknown_key_none(storage: Storage) -> None:
    assert storage.revoke_api_key("0123456789abcdef") is None


def test_list_keys_oldest_first(storage: Storage) -> None:
    names = [create_key(storage, name)[0].name for name in ("one", "two", "three")]
    assert [record.name for record in storage.list_api_keys()] == names


def test_list_owned_filters_by_key(storage: Storage) -> None:
    mine, theirs = new_video_id(), new_video_id()
    storage.create(mine, "a.mp4", INFO, owner_key_id="key-a")
    storage.create(theirs, "b.mp4", INFO, owner_key_id="key-b")
    storage.create(new_video_id(), "legacy.mp4", INFO)
    assert [record.id for record in storage.list_owned("key-a")] == [mine]


def test_delete_removes_row_and_files(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO, owner_key_id="key-a")
    storage.upload_path(video_id).write_bytes(b"upload")
    storage.stream_path(video_id).write_bytes(b"stream")
    assert storage.delete(video_id)
    assert storage.get(video_id) is None
    assert not storage.upload_path(video_id).exists()
    assert not storage.stream_path(video_id).exists()


def test_delete_refuses_encoding_video(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.upload_path(video_id).write_bytes(b"upload")
    storage.mark_encoding(video_id)
    assert not storage.delete(video_id)
    assert storage.get(video_id).status is VideoStatus.ENCODING
    assert storage.upload_path(video_id).exists()


def test_delete_unknown_video_false(storage: Storage) -> None:
    assert not storage.delete(new_video_id())


def test_command_create_prints_key_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["keys", "create", "ci runner", "--data-dir", str(tmp_path)])
    output = capsys.readouterr()
    key = output.out.strip()
    assert status == 0
    assert key.startswith(KEY_PREFIX)
    assert "printed only once" in output.err
    assert key not in output.err


def test_command_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["keys", "create", "ci runner", "--data-dir", str(tmp_path)])
    capsys.readouterr()
    main(["keys", "list", "--data-dir", str(tmp_path)])
    key_id, _, status, name = capsys.readouterr().out.strip().split("  ")
    revoked = main(["keys", "revoke", key_id, "--data-dir", str(tmp_path)])
    main(["keys", "list", "--data-dir", str(tmp_path)])
    listed = capsys.readouterr().out
    assert (status, name) == ("active", "ci runner")
    assert revoked == 0
    assert f"{key_id}  " in listed
    assert "  revoked " in listed


def test_command_revoke_unknown_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["keys", "revoke", "nope", "--data-dir", str(tmp_path)])
    assert status == 1
    assert "no API key with id 'nope'" in capsys.readouterr().err


def test_command_create_bad_name_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["keys", "create", " ", "--data-dir", str(tmp_path)])
    assert status == 2
    assert "invalid key name" in capsys.readouterr().err
