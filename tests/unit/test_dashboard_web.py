"""The dashboard's pure parts: CSRF tokens, the same-origin rule, redirects, graphs."""

from __future__ import annotations

from starlette.requests import Request

from spruce.dashboard.graphs import Series, chart
from spruce.dashboard.pages import _safe_next
from spruce.dashboard.web import csrf_token, same_origin


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_csrf_tokens_are_bound_to_the_session() -> None:
    assert csrf_token("HRKU-a") == csrf_token("HRKU-a")
    assert csrf_token("HRKU-a") != csrf_token("HRKU-b")
    assert "HRKU" not in csrf_token("HRKU-a")


def test_only_forms_from_this_origin_pass() -> None:
    host = {"host": "127.0.0.1:5000"}
    assert same_origin(request({**host, "origin": "http://127.0.0.1:5000"}))
    assert same_origin(request({**host, "referer": "http://127.0.0.1:5000/dashboard/x"}))
    assert same_origin(request(host))  # a client that names no origin (curl): the token decides
    assert not same_origin(request({**host, "origin": "http://localhost:5000"}))
    assert not same_origin(request({**host, "origin": "null"}))
    assert not same_origin(request({**host, "referer": "https://evil.example/"}))


def test_sign_in_only_returns_to_the_dashboard() -> None:
    assert _safe_next("/dashboard/apps/a?x=1") == "/dashboard/apps/a?x=1"
    for target in ("https://evil.example/dashboard/", "//evil.example/dashboard/", "/apps", ""):
        assert _safe_next(target) == "/dashboard/"


def test_a_chart_draws_measured_points_and_leaves_gaps() -> None:
    svg = str(chart("t", "T", "ms", (0, 60, 120, 180), [Series("p50", (5.0, None, 7.0, 9.0))]))
    assert 'data-measured="3"' in svg
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 1  # the gap splits the line
    assert "p50: <b>9 ms</b>" in svg
    empty = str(chart("e", "E", "", (0, 60), []))
    assert 'data-measured="0"' in empty and "nothing measured yet" in empty
    escaped = str(chart("x", "<b>", "", (0,), [Series("<script>", (1.0,))]))
    assert "<script>" not in escaped and "<b>" not in escaped.split("<figcaption>")[1][:10]
