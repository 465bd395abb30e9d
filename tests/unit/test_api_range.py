"""The API's Range header as Heroku's clients send it (heroku3's defaults included)."""

from __future__ import annotations

import pytest

from spruce.api.http import parse_range
from spruce.services.errors import InvalidParams


def test_heroku3_default_ranges() -> None:
    # heroku3 sends "<order_by> ..; ;" with no max and no order
    rng = parse_range("id ..; ;", ("id", "name"), "name")
    assert (rng.field, rng.start, rng.max, rng.order) == ("id", None, 1000, "asc")
    rng = parse_range("version ..; order=desc,max=10;", ("version", "id"), "version")
    assert (rng.field, rng.max, rng.order) == ("version", 10, "desc")


def test_aliases_name_an_allowed_field() -> None:
    rng = parse_range("domain ..; ;", ("id", "hostname"), "hostname", {"domain": "hostname"})
    assert rng.field == "hostname"
    with pytest.raises(InvalidParams, match="ranges are supported on: id, hostname"):
        parse_range("domain ..; ;", ("id", "hostname"), "hostname")
