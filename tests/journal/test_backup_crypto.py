"""The archive encryption alone: every way of tampering with the bytes is refused, by name."""

import io
import os

import pytest

from guichet.journal.crypto import (
    HEADER_SIZE,
    TAG,
    ArchiveError,
    EncryptingWriter,
    decrypt_chunks,
    key_id,
    parse_key,
)

KEY = os.urandom(32)
CHUNK = 1024
SIZE = CHUNK + TAG


def encrypt(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, key, chunk_size=CHUNK)
    for i in range(0, len(data), 700):  # writes that do not line up with chunks
        writer.write(data[i:i + 700])
    writer.close()
    return out.getvalue()


def decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    return b"".join(decrypt_chunks(io.BytesIO(blob), key))


DATA = os.urandom(CHUNK * 4 + 100)  # 5 chunks, the last one short


def test_round_trip_of_any_length():
    for n in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK):
        data = os.urandom(n)
        assert decrypt(encrypt(data)) == data


def test_same_data_encrypts_differently_each_time():
    assert encrypt(DATA) != encrypt(DATA)


def test_wrong_key_is_named_as_such():
    other = os.urandom(32)
    with pytest.raises(ArchiveError, match=f"wrong key: this archive was encrypted with key {key_id(KEY)}, "
                                           f"the key given is {key_id(other)}"):
        decrypt(encrypt(DATA), other)


def test_an_altered_byte_names_its_chunk():
    blob = bytearray(encrypt(DATA))
    blob[HEADER_SIZE + 2 * SIZE + 10] ^= 1
    with pytest.raises(ArchiveError, match="the archive is altered: chunk 3 "):
        decrypt(bytes(blob))


def test_an_altered_header_is_refused():
    blob = bytearray(encrypt(DATA))
    blob[20] ^= 1  # in the salt
    with pytest.raises(ArchiveError, match="altered: chunk 1 "):
        decrypt(bytes(blob))


def test_swapped_chunks_are_refused():
    blob = encrypt(DATA)
    header, body = blob[:HEADER_SIZE], blob[HEADER_SIZE:]
    chunks = [body[i:i + SIZE] for i in range(0, len(body), SIZE)]
    chunks[1], chunks[2] = chunks[2], chunks[1]
    with pytest.raises(ArchiveError, match="altered: chunk 2 "):
        decrypt(header + b"".join(chunks))


def test_a_chunk_from_another_archive_is_refused():
    a, b = encrypt(DATA), encrypt(DATA)
    mixed = a[: HEADER_SIZE + SIZE] + b[HEADER_SIZE + SIZE: HEADER_SIZE + 2 * SIZE] + a[HEADER_SIZE + 2 * SIZE:]
    with pytest.raises(ArchiveError, match="altered: chunk 2 "):
        decrypt(mixed)


def test_truncation_at_a_chunk_boundary_is_named():
    blob = encrypt(DATA)
    with pytest.raises(ArchiveError, match="truncated: it stops after chunk 3, which is not its last"):
        decrypt(blob[: HEADER_SIZE + 3 * SIZE])


def test_truncation_inside_a_chunk_is_named():
    blob = encrypt(DATA)
    with pytest.raises(ArchiveError, match="truncated or altered: its last chunk \\(4\\)"):
        decrypt(blob[: HEADER_SIZE + 3 * SIZE + 500])


def test_truncation_inside_the_header_or_before_any_chunk():
    blob = encrypt(DATA)
    with pytest.raises(ArchiveError, match="ends inside its header"):
        decrypt(blob[:20])
    with pytest.raises(ArchiveError, match="ends inside chunk 1"):
        decrypt(blob[:HEADER_SIZE])


def test_a_dropped_last_chunk_and_an_appended_chunk_are_refused():
    blob = encrypt(DATA)
    with pytest.raises(ArchiveError, match="truncated"):
        decrypt(blob[: HEADER_SIZE + 4 * SIZE])  # the short last chunk removed
    with pytest.raises(ArchiveError, match="altered"):
        decrypt(blob + blob[HEADER_SIZE: HEADER_SIZE + SIZE])


def test_not_an_archive():
    with pytest.raises(ArchiveError, match="not a Guichet backup archive"):
        decrypt(b"PK\x03\x04 a zip file")


@pytest.mark.parametrize("text", ["", "guichet-backup-key-1:abc", "not base64 !!!", "guichet-backup-key-1:" + "A" * 40])
def test_malformed_keys_are_refused(text):
    with pytest.raises(ArchiveError, match="does not hold a backup key"):
        parse_key(text, "the key")
