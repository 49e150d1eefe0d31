"""API keys: random keys shown once and stored as SHA-256 digests, and the ``latentcast keys`` command.

    latentcast keys create NAME     prints a new key once (stdout) and its id (stderr)
    latentcast keys list            lists the id, creation time, status and name of every key
    latentcast keys revoke ID       rejects the key from now on, and its videos stay stored

A key is ``lc_`` and 32 random bytes in URL-safe base64. With 256 random bits a key cannot be
guessed, so one SHA-256 of its text is enough to store it: slow password hashes exist for
secrets that people choose, which an attacker can guess.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import secrets
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from latentcast.server.settings import Settings
from latentcast.server.storage import ApiKeyRecord, Storage

logger = logging.getLogger(__name__)

KEY_PREFIX = "lc_"
KEY_RANDOM_BYTES = 32
MAX_NAME_CHARS = 100


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest of a key's text, the form in which keys are stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_key_name(name: str) -> str:
    """Return the name without surrounding spaces; ValueError for an empty, over-long or unprintable name."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_CHARS or not cleaned.isprintable():
        raise ValueError(
            f"invalid key name {name[:MAX_NAME_CHARS]!r}: expected 1 to {MAX_NAME_CHARS} printable characters, "
            "such as the customer or application the key is for"
        )
    return cleaned


def create_key(storage: Storage, name: str) -> tuple[ApiKeyRecord, str]:
    """Store a new key under ``name``; return its record and its text, which is not stored and cannot be shown again."""
    key = generate_key()
    record = storage.add_api_key(secrets.token_hex(8), check_key_name(name), hash_key(key))
    return record, key


def create_key_with_command(env: dict[str, str], data_dir: Path, name: str) -> str:
    """Run ``latentcast keys create NAME`` with the environment of a server process and return the printed key.

    The command reads the same LATENTCAST_* settings as that server, so the key lands in its database.
    """
    command = [sys.executable, "-m", "latentcast.server.cli", "keys", "create", name, "--data-dir", str(data_dir)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"`latentcast keys create` failed with status {completed.returncode}:\n{completed.stderr}")
    return completed.stdout.strip()


# --- the ``latentcast keys`` command -----------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path,
        help="the server's data folder (default: LATENTCAST_DATA_DIR or ./latentcast-data)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument(
        "name", help=f"label of the key, up to {MAX_NAME_CHARS} characters (the customer or application)"
    )
    actions.add_parser("list", parents=[common], help="list every key: id, creation time, status and name")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key; requests with it get 401 from now on")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as `latentcast keys list` shows it")


def _open_storage(data_dir: Path | None) -> Storage:
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    storage = Storage(settings.data_dir, settings.database_path, settings.database_url)
    storage.open()
    return storage


def _print_create(storage: Storage, name: str) -> int:
    try:
        record, key = create_key(storage, name)
    except ValueError as exc:
        print(f"latentcast keys: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(f"created API key {record.id} ({record.name}); it is printed only once, so store it now", file=sys.stderr)
    return 0


def _print_list(storage: Storage) -> int:
    for record in storage.list_api_keys():
        status = f"revoked {record.revoked_at}" if record.revoked else "active"
        print(f"{record.id}  {record.created_at}  {status}  {record.name}")
    return 0


def _print_revoke(storage: Storage, key_id: str) -> int:
    record = storage.revoke_api_key(key_id)
    if record is None:
        print(f"latentcast keys: no API key with id {key_id!r}; `latentcast keys list` shows the ids", file=sys.stderr)
        return 1
    print(f"API key {record.id} ({record.name}) revoked at {record.revoked_at}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        storage = _open_storage(args.data_dir)
    except ValidationError as exc:
        logger.error("invalid server settings:\n%s", exc)
        return 2
    if args.action == "create":
        return _print_create(storage, args.name)
    if args.action == "list":
        return _print_list(storage)
    return _print_revoke(storage, args.key_id)
