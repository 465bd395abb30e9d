"""The stage and pipeline name `spruce pipelines:create/add` guess from an app name."""

from __future__ import annotations

import pytest

from spruce.cli.pipelines import infer


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("shop-dev", ("shop", "development")),
        ("shop-qa", ("shop", "development")),
        ("shop-staging", ("shop", "staging")),
        ("shop-stg", ("shop", "staging")),
        ("shop-prod", ("shop", "production")),
        ("shop-demo", ("shop", "production")),
        ("shop", ("shop", "production")),
        ("-dev", ("-dev", "production")),
    ],
)
def test_infer(app: str, expected: tuple[str, str]) -> None:
    assert infer(app) == expected
