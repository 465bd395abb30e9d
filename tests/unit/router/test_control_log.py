"""The router control channel's log batches (worker -> supervisor)."""

from __future__ import annotations


async def test_log_batches_cross_the_control_channel() -> None:
    import asyncio

    from spruce.router import control

    entries = [
        control.log_entry("app-1", 'at=info path="/a\tb" fwd="1.2.3.4"', 1700000000123456),
        control.log_entry("app-2", "line with\nnewline", 1700000000999999),
        "garbage without tabs",
    ]
    reader = asyncio.StreamReader()
    reader.feed_data(control.encode_log(entries) + control.encode({"t": "wake", "app_id": "x"}))
    reader.feed_eof()
    msg = await control.read_message(reader)
    assert msg == {
        "t": "log",
        "lines": [
            ["app-1", 'at=info path="/a\tb" fwd="1.2.3.4"', 1700000000.123456],
            ["app-2", "line with\\nnewline", 1700000000.999999],
        ],
    }
    assert await control.read_message(reader) == {"t": "wake", "app_id": "x"}
