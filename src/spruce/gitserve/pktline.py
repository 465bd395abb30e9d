"""pkt-line framing (sans-IO): the few pieces the smart-HTTP endpoint writes itself."""

from __future__ import annotations

FLUSH = b"0000"


def pkt_line(data: bytes) -> bytes:
    """Frame one payload: four hex digits of total length, then the payload."""
    if len(data) > 65516:
        raise ValueError("pkt-line payload too long")
    return f"{len(data) + 4:04x}".encode() + data


def service_advertisement_header(service: str) -> bytes:
    """The `# service=...` preamble smart-HTTP puts before the ref advertisement."""
    return pkt_line(f"# service={service}\n".encode()) + FLUSH
