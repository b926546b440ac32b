"""Uploads kept small: a file is held in memory up to a cap, never spooled to disk.

Django's default handlers write any upload to a temporary file, however large, before a view
sees it. A view that accepts files swaps in `CappedUploadHandler` before the body is read
(Django's "modifying upload handlers on the fly": the view is `csrf_exempt` and checks CSRF
itself after the swap, since CSRF reads the body) and refuses a body declared larger first.
"""

import io

from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

# Room for the multipart framing and the form's other fields around the file itself.
MULTIPART_SLACK = 64 * 1024


def declared_too_large(content_length: str | None, max_bytes: int) -> bool:
    """A request body announced as larger than the file cap plus its framing."""
    try:
        return int(content_length or 0) > max_bytes + MULTIPART_SLACK
    except ValueError:
        return True


class CappedUploadHandler(FileUploadHandler):
    """Keeps up to `max_bytes` of each file in memory; past that it keeps counting but drops
    the data, and the file arrives empty with its real `size`, for the form to refuse."""

    def __init__(self, request=None, *, max_bytes: int):
        super().__init__(request)
        self.max_bytes = max_bytes

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.buffer, self.seen = io.BytesIO(), 0

    def receive_data_chunk(self, raw_data, start):
        self.seen += len(raw_data)
        if self.seen <= self.max_bytes:
            self.buffer.write(raw_data)
        else:
            self.buffer = io.BytesIO()
        return None

    def file_complete(self, file_size):
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=self.seen,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
