"""Reading request bodies under a size limit: raw audio, JSON, or multipart fields and file parts.

Every limit is checked from Content-Length before reading and counted as the body streams in, so a
chunked body is cut off as soon as it passes: routes that take uploads get room for one (app.py),
every other body the room of a form's text fields; each reader here holds to its own limit within.
A 413 closes the connection rather than read the rest of the body, but for a body refused from its
Content-Length that is at most a few times the limit: that one is read to its end (and dropped) first,
since a client still writing when the answer comes has the connection reset under it, and Node's fetch
(the OpenAI and Deepgram Node SDKs) then reports a connection error instead of the 413, and retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from whisper_api.http.errors import CLOSE_CONNECTION, ApiError, bad_request
from whisper_api.http.fields import Fields

#: Room for the multipart envelope and text fields around the files themselves.
FORM_OVERHEAD_BYTES = 1024 * 1024
#: A JSON body carries what a form's text fields do, and gets their room.
MAX_JSON_BYTES = FORM_OVERHEAD_BYTES
#: A body refused from its Content-Length is read to its end before the 413 up to this many times its limit.
_DRAIN_FACTOR = 4


@dataclass(frozen=True, slots=True)
class FilePart:
    name: str
    filename: str
    content_type: str
    data: bytes


async def read_body(request: Request, max_bytes: int, *, param: str | None = "file") -> bytes:
    """The raw body (audio sent as is, or JSON), 413 as soon as it is over `max_bytes`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise await _refused_unread(request, int(length), "The body", max_bytes, param)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large("The body", max_bytes, param)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_multipart(
    request: Request, max_file_bytes: int, *, field: str = "file"
) -> tuple[Fields, list[FilePart]]:
    """Fields (name → values, in order) and every file part; 400 naming the route's file `field` if the
    body is not multipart, 413 naming the file that is over `max_file_bytes`."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise bad_request(
            f"Send the audio as multipart/form-data with a '{field}' field.",
            param=field,
            code="invalid_content_type",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_file_bytes + FORM_OVERHEAD_BYTES:
        # Refused before reading: the body limit is the largest of all routes', not this one's.
        raise await _refused_unread(request, int(length), "The file", max_file_bytes, "file")
    try:
        form = await request.form()
    except RequestEntityTooLarge:  # past the route's limit, which is this one plus the form's room
        raise _too_large("The file", max_file_bytes, "file") from None
    except (UnicodeDecodeError, LookupError):  # a text field not in its charset, or an unknown charset
        raise bad_request(
            "A form field is not text in its declared charset (UTF-8 unless it says otherwise). A file goes "
            'in a part with a filename: Content-Disposition: form-data; name="file"; filename="audio.wav".',
            code="invalid_form_field",
        ) from None
    fields = {key: [value for value in form.getall(key) if isinstance(value, str)] for key in form}
    parts = []
    for key in form:
        for value in form.getall(key):
            if not isinstance(value, UploadFile):
                continue
            data = await value.read()
            if len(data) > max_file_bytes:
                raise _too_large(
                    f"The file '{value.filename}' ({len(data) / 2**20:.1f} MiB)", max_file_bytes, key
                )
            parts.append(FilePart(key, value.filename or "", value.content_type or "", data))
    return fields, parts


def _too_large(what: str, limit: int, param: str | None, *, close: bool = True) -> ApiError:
    return ApiError(
        413,
        f"{what} is over the {limit / 2**20:g} MiB limit.",
        param=param,
        code="file_too_large",
        headers=CLOSE_CONNECTION if close else None,
    )


async def _refused_unread(
    request: Request, length: int, what: str, limit: int, param: str | None
) -> ApiError:
    """The 413 for a body of `length` bytes not yet read: after reading it to its end when it is small
    enough, otherwise closing the connection."""
    if length <= _DRAIN_FACTOR * limit and await _drained(request):
        return _too_large(what, limit, param, close=False)
    return _too_large(what, limit, param)


async def _drained(request: Request) -> bool:
    """Whether the body was read to its end (each piece dropped as it came); False if the client left."""
    while (message := await request.receive())["type"] == "http.request":
        if not message.get("more_body", False):
            return True
    return False
