"""``latentcast serve``: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from latentcast.server.app import create_app
from latentcast.server.settings import Settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: LATENTCAST_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port to listen on (default: LATENTCAST_PORT or 8000)")
    parser.add_argument(
        "--data-dir", type=Path,
        help="folder for the database, uploads and streams (default: LATENTCAST_DATA_DIR or ./latentcast-data)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    overrides = {"host": args.host, "port": args.port, "data_dir": args.data_dir}
    try:
        settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        logger.error("invalid server settings:\n%s", exc)
        return 2
    if not _is_loopback(settings.host):
        logger.warning("listening on %s over plain HTTP: API keys and signed links cross the network unencrypted, "
                       "so put a TLS proxy in front", settings.host)
    # log_config=None keeps the logging that the latentcast command set up.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
    return 0
