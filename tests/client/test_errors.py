"""The exception hierarchy and ServerError's fields."""

from __future__ import annotations

import pytest

from latentcast_client.errors import BundleError, LatentcastError, ServerError, StreamError


@pytest.mark.parametrize("error", [StreamError, BundleError, ServerError])
def test_errors_derive_from_base(error):
    assert issubclass(error, LatentcastError)


def test_server_error_fields():
    error = ServerError("request failed", status_code=409, detail="not ready", url="http://127.0.0.1/v1/x")
    assert str(error) == "request failed"
    assert error.status_code == 409
    assert error.detail == "not ready"
    assert error.url == "http://127.0.0.1/v1/x"


def test_server_error_fields_default_to_none():
    error = ServerError("cannot reach the server")
    assert error.status_code is None
    assert error.detail is None
    assert error.url is None
