"""lean_crc.crc32 is zlib.crc32: the ledger's stored head hashes and the config cache's names depend on its values."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from token_budget.lean_crc import TABLE, crc32


@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc32(data) == zlib.crc32(data)
    assert crc32(data, start) == zlib.crc32(data, start)


def test_the_table_is_crc32s_of_each_byte() -> None:
    assert len(TABLE) == 256 and crc32(b"") == 0
    assert all(crc32(bytes([n])) == zlib.crc32(bytes([n])) for n in range(256))
