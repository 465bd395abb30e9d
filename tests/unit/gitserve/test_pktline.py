import pytest

from spruce.gitserve.pktline import FLUSH, pkt_line, service_advertisement_header


def test_pkt_line_length_prefix_counts_itself() -> None:
    assert pkt_line(b"a\n") == b"0006a\n"
    assert pkt_line(b"") == b"0004"
    assert FLUSH == b"0000"


def test_service_header() -> None:
    assert service_advertisement_header("git-upload-pack") == b"001e# service=git-upload-pack\n0000"
    assert (
        service_advertisement_header("git-receive-pack") == b"001f# service=git-receive-pack\n0000"
    )


def test_payload_limit() -> None:
    pkt_line(b"x" * 65516)
    with pytest.raises(ValueError):
        pkt_line(b"x" * 65517)
