"""GET /v1/qualities on the shared server, which has the two tiny levels."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def qualities(client: httpx.Client) -> list[dict]:
    response = client.get("/v1/qualities")
    assert response.status_code == 200
    return response.json()


def test_qualities_lists_levels_in_order(qualities: list[dict]) -> None:
    assert [level["quality"] for level in qualities] == [1, 2]


def test_qualities_marks_default(qualities: list[dict], client: httpx.Client) -> None:
    assert [level["default"] for level in qualities] == [True, False]
    assert client.get("/healthz").json()["default_quality"] == 1


def test_qualities_bundles_match_decoder_route(qualities: list[dict], client: httpx.Client) -> None:
    for level in qualities:
        response = client.get("/v1/decoder", params={"quality": level["quality"]})
        assert response.headers["x-bundle-sha256"] == level["bundle_sha256"]


def test_qualities_model_ids_name_levels(qualities: list[dict]) -> None:
    assert qualities[0]["model_id"].startswith("quality-1-")
    assert qualities[1]["model_id"].startswith("quality-2-")


def test_qualities_measured_numbers_when_recorded(qualities: list[dict]) -> None:
    assert (qualities[1]["bpp"], qualities[1]["psnr"]) == (0.5, 12.5)


def test_qualities_measured_numbers_omitted_when_absent(qualities: list[dict]) -> None:
    assert "bpp" not in qualities[0]
    assert "psnr" not in qualities[0]
