"""Uploads held in memory up to a cap (asksage_admin/lib/uploads.py)."""

from asksage_admin.lib.uploads import MULTIPART_SLACK, CappedUploadHandler, declared_too_large


def receive(handler: CappedUploadHandler, chunks: list[bytes]):
    handler.new_file("file", "f.csv", "text/csv", None)
    for chunk in chunks:
        handler.receive_data_chunk(chunk, 0)
    return handler.file_complete(sum(map(len, chunks)))


def test_a_file_under_the_cap_arrives_whole():
    upload = receive(CappedUploadHandler(max_bytes=10), [b"abc", b"def"])
    assert (upload.read(), upload.size) == (b"abcdef", 6)


def test_a_file_over_the_cap_arrives_empty_with_its_real_size():
    upload = receive(CappedUploadHandler(max_bytes=10), [b"x" * 8, b"y" * 8, b"z" * 8])
    assert (upload.read(), upload.size) == (b"", 24)


def test_a_declared_body_over_the_cap_and_its_framing_is_too_large():
    assert not declared_too_large(str(1000 + MULTIPART_SLACK), 1000)
    assert declared_too_large(str(1001 + MULTIPART_SLACK), 1000)
    assert declared_too_large("lots", 1000)  # a malformed length is not trusted
    assert not declared_too_large(None, 1000)
