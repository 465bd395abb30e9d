"""HPACK (RFC 7541) for the HTTP/2 server: a decoder whose dynamic table carries a generation
number (so decoded header blocks can be cached safely) and a small encoder.

Sans-IO, bytes in and out. Huffman decoding uses the `hpack` package's state table (installed
with h2); the encoder writes plain literals (no Huffman) to stay cheap.
"""

from __future__ import annotations

from collections import deque

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

Header = tuple[bytes, bytes]

STATIC: tuple[Header, ...] = tuple(HeaderTable.STATIC_TABLE)
STATIC_LEN = len(STATIC)  # 61
_STATIC_FULL: dict[Header, int] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_n, _v) in enumerate(STATIC, 1):
    _STATIC_FULL.setdefault((_n, _v), _i)
    _STATIC_NAME.setdefault(_n, _i)

DEFAULT_TABLE_SIZE = 4096
# values the encoder never puts in the dynamic table (secrets: RFC 7541 7.1.3)
NEVER_INDEXED = frozenset({b"set-cookie", b"cookie", b"authorization", b"proxy-authorization"})
NOT_INDEXED = frozenset({b"content-length", b"date", b"x-request-id", b"etag", b"last-modified"})


class HPACKError(Exception):
    """A header block that cannot be decoded: a connection error (COMPRESSION_ERROR)."""


class HeaderListTooLarge(Exception):
    """The decoded header list exceeds the advertised SETTINGS_MAX_HEADER_LIST_SIZE."""


def _entry_size(name: bytes, value: bytes) -> int:
    return 32 + len(name) + len(value)


class Decoder:
    __slots__ = ("table", "size", "max_size", "settings_max", "gen", "max_list")

    def __init__(self, settings_max: int = DEFAULT_TABLE_SIZE, max_list: int = 1 << 16) -> None:
        self.table: deque[Header] = deque()  # newest first
        self.size = 0
        self.max_size = settings_max
        self.settings_max = settings_max  # our SETTINGS_HEADER_TABLE_SIZE
        self.gen = 0  # bumped by every change of the dynamic table
        self.max_list = max_list

    def _add(self, name: bytes, value: bytes) -> None:
        self.gen += 1
        size = _entry_size(name, value)
        table = self.table
        if size > self.max_size:
            table.clear()
            self.size = 0
            return
        self.size += size
        table.appendleft((name, value))
        while self.size > self.max_size:
            n, v = table.pop()
            self.size -= _entry_size(n, v)

    def _resize(self, new: int) -> None:
        self.gen += 1
        self.max_size = new
        table = self.table
        while self.size > new:
            n, v = table.pop()
            self.size -= _entry_size(n, v)

    def _get(self, index: int) -> Header:
        if index <= 0:
            raise HPACKError("index 0")
        if index <= STATIC_LEN:
            return STATIC[index - 1]
        try:
            return self.table[index - STATIC_LEN - 1]
        except IndexError:
            raise HPACKError(f"index {index} out of range") from None

    def decode(self, data: bytes) -> list[Header]:
        headers: list[Header] = []
        pos = 0
        end = len(data)
        total = 0
        max_list = self.max_list
        while pos < end:
            b = data[pos]
            if b & 0x80:  # indexed field
                index, pos = _int(data, pos, 7)
                header = self._get(index)
            elif b & 0xE0 == 0x20:  # dynamic table size update: only before the first field
                if headers:
                    raise HPACKError("table size update after a field")
                size, pos = _int(data, pos, 5)
                if size > self.settings_max:
                    raise HPACKError("table size update above the settings")
                self._resize(size)
                continue
            else:
                prefix = 6 if b & 0x40 else 4
                index, pos = _int(data, pos, prefix)
                if index:
                    name = self._get(index)[0]
                else:
                    name, pos = _str(data, pos)
                value, pos = _str(data, pos)
                header = (name, value)
                if prefix == 6:
                    self._add(name, value)
            total += 32 + len(header[0]) + len(header[1])
            if total > max_list:
                raise HeaderListTooLarge()
            headers.append(header)
        return headers


def _int(data: bytes, pos: int, prefix: int) -> tuple[int, int]:
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise HPACKError("truncated integer")
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HPACKError("integer too large")


def _str(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(data):
        raise HPACKError("truncated string")
    huffman = data[pos] & 0x80
    length, pos = _int(data, pos, 7)
    stop = pos + length
    if stop > len(data):
        raise HPACKError("truncated string")
    raw = data[pos:stop]
    if huffman:
        try:
            raw = decode_huffman(raw)
        except HPACKDecodingError:
            raise HPACKError("bad huffman string") from None
    return bytes(raw), stop


def encode_int(value: int, prefix: int, first: int) -> bytes:
    """`value` on a `prefix`-bit prefix, the high bits of the first byte being `first`."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((first | value,))
    out = bytearray((first | mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _lit(s: bytes) -> bytes:
    n = len(s)
    return (bytes((n,)) if n < 0x7F else encode_int(n, 7, 0)) + s


class Encoder:
    """Indexed fields from the static table and our dynamic table, literals otherwise."""

    __slots__ = ("entries", "index", "count", "size", "max_size", "pending", "peer_max", "_memo")

    def __init__(self) -> None:
        self.entries: deque[tuple[Header, int]] = deque()  # oldest first: (header, seq)
        self.index: dict[Header, int] = {}  # header -> seq of its newest entry
        self.count = 0  # entries ever inserted
        self.size = 0
        self.max_size = DEFAULT_TABLE_SIZE
        self.peer_max = DEFAULT_TABLE_SIZE
        self.pending: list[int] = []  # table size updates to announce
        # blocks by (header list, entries ever inserted): a list that inserted nothing encodes
        # the same again while the table is unchanged (responses repeat their headers)
        self._memo: dict[tuple[tuple[Header, ...], int], bytes] = {}

    def set_peer_max(self, value: int) -> None:
        """The client's SETTINGS_HEADER_TABLE_SIZE changed: our table stays within it."""
        self.peer_max = value
        new = min(value, DEFAULT_TABLE_SIZE)
        if new != self.max_size:
            self.max_size = new
            self.pending.append(new)
            self._memo.clear()  # what gets indexed depends on the size
            self._evict()

    def _evict(self) -> None:
        entries = self.entries
        if self.size > self.max_size:
            self._memo.clear()
        while self.size > self.max_size:
            h, seq = entries.popleft()
            self.size -= _entry_size(*h)
            if self.index.get(h) == seq:
                del self.index[h]

    def encode(self, headers: list[Header]) -> bytes:
        key = None
        if not self.pending:
            key = (tuple(headers), self.count)
            hit = self._memo.get(key)
            if hit is not None:
                return hit
        block = self._encode(headers)
        if key is not None and key[1] == self.count:  # nothing inserted: reusable as is
            memo = self._memo
            if len(memo) >= 256:
                memo.clear()
            memo[key] = block
        return block

    def _encode(self, headers: list[Header]) -> bytes:
        out: list[bytes] = []
        if self.pending:
            # the smallest size since the last block, then the current one (RFC 7541 4.2)
            low = min(self.pending)
            out.append(encode_int(low, 5, 0x20))
            if low != self.max_size:
                out.append(encode_int(self.max_size, 5, 0x20))
            self.pending = []
        full = _STATIC_FULL
        dyn = self.index
        for h in headers:
            i = full.get(h)
            if i is not None:
                out.append(bytes((0x80 | i,)) if i < 0x7F else encode_int(i, 7, 0x80))
                continue
            seq = dyn.get(h)
            if seq is not None:
                out.append(encode_int(STATIC_LEN + self.count - seq, 7, 0x80))
                continue
            name, value = h
            ni = _STATIC_NAME.get(name, 0)
            size = 32 + len(name) + len(value)
            if name in NEVER_INDEXED:
                out.append(encode_int(ni, 4, 0x10))
            elif name in NOT_INDEXED or size > self.max_size // 2:
                out.append(encode_int(ni, 4, 0x00))
            else:
                out.append(encode_int(ni, 6, 0x40))
                self.entries.append((h, self.count))
                dyn[h] = self.count
                self.count += 1
                self.size += size
                self._evict()
            if not ni:
                out.append(_lit(name))
            out.append(_lit(value))
        return b"".join(out)
