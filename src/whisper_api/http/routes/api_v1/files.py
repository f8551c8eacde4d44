"""Seed 004's files: /file (upload, list) and /file/{uuid} (download, rename, delete).

The same files as /v1/files, owned and deduplicated per user by the job service; the seed's `hash` is
the content's sha256. Audio is kept as uploaded and decoded when a job runs, so there are no MP3 or WAV
conversions to keep or delete beside it.
"""

from __future__ import annotations

import contextlib
import re

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec

from whisper_api.accounts.principal import Principal
from whisper_api.audio import AudioError, AudioTooLong
from whisper_api.http.errors import ApiError
from whisper_api.http.openapi import FilesOperation
from whisper_api.http.responses import OPEN, answering_also
from whisper_api.http.routes.api_v1 import ids
from whisper_api.http.routes.api_v1.common import (
    Limit,
    Page,
    Pagination,
    answers,
    fail,
    internal_id,
    json_body,
    json_object,
    not_found_as,
    pagination,
    signed_in,
    string,
    timestamp,
)
from whisper_api.http.routes.files import content_disposition
from whisper_api.http.uploads import read_multipart
from whisper_api.jobs.service import JobService, Upload
from whisper_api.jobs.store import Conflict, FileRecord, StorageQuotaExceeded

_MAX_FILENAME = 255


class UploadStatus(msgspec.Struct, omit_defaults=True):
    existed: bool
    uploaded: bool
    error: str | None = None


class Uploaded(msgspec.Struct, omit_defaults=True):
    message: str
    filename: str
    status: UploadStatus
    uuid: str | None = None
    hash: str | None = None


class Uploads(msgspec.Struct):
    files: list[Uploaded]


class FileListed(msgspec.Struct):
    uuid: str
    filename: str
    content_type: str
    size_bytes: int
    uploaded_at: str


class FileList(msgspec.Struct):
    files: list[FileListed]
    pagination: Pagination


class Renamed(msgspec.Struct):
    message: str
    uuid: str
    old_filename: str
    new_filename: str


class Deleted(msgspec.Struct):
    message: str
    uuid: str
    filename: str


@post(
    "/file",
    status_code=200,
    guards=[signed_in],
    operation_class=FilesOperation,
    responses=answers(400, 401, 413),
    summary="Upload audio or video files",
)
async def upload(request: Request, jobs: JobService, principal: Principal) -> Uploads:
    _, parts = await read_multipart(request, request.app.state.max_file_bytes)
    if not parts:
        raise fail(400, "No files provided")
    uploads = [Upload(part.data, part.filename, part.content_type) for part in parts]
    # All of them must fit in the user's storage quota, or none is stored (a 413).
    await jobs.check_room(uploads, owner=principal)
    # Each file on its own: one that is not audio is reported in its entry, and the others are stored.
    results = []
    for upload in uploads:
        try:
            [(record, existed)] = await jobs.add_files([upload], owner=principal)
        except AudioError as error:
            refused = "audio_too_long" if isinstance(error, AudioTooLong) else "unsupported_content_type"
            message = error.message if isinstance(error, AudioTooLong) else "Unsupported content type"
            results.append(Uploaded(message, upload.filename, UploadStatus(False, False, refused)))
            continue
        except StorageQuotaExceeded as error:  # another upload of the user's took the room meanwhile
            results.append(Uploaded(error.message, upload.filename, UploadStatus(False, False, error.code)))
            continue
        results.append(
            Uploaded(
                "File already exists" if existed else "File uploaded successfully",
                record.filename,
                UploadStatus(existed, not existed),
                ids.FILE.public(record.id),
                record.sha256,
            )
        )
    return Uploads(results)


@get(
    "/file",
    guards=[signed_in],
    responses=answers(400, 401),
    summary="Your files, newest first, a page at a time",
)
async def list_files(jobs: JobService, principal: Principal, page: Page = 1, limit: Limit = 10) -> FileList:
    records, total = await jobs.file_page(owner=principal, offset=(page - 1) * limit, limit=limit)
    return FileList([_listed(record) for record in records], pagination(page, limit, total))


@get(
    "/file/{uuid:str}",
    security=OPEN,
    summary="Download a file (public by default: the UUID is the key)",
    # The type it was uploaded with is sent back, whatever it says.
    media_type="application/octet-stream",
    operation_class=answering_also("audio/*", "video/*", "*/*"),
    responses={
        206: ResponseSpec(
            bytes, media_type="application/octet-stream", description="The bytes of the range asked for."
        ),
        **answers(400, 401, 404, 416),
    },
)
async def download(
    request: Request, jobs: JobService, reader: Principal | None, uuid: str
) -> Response[bytes]:
    with not_found_as("File not found or access denied"):
        record, data = await jobs.file_content(internal_id(ids.FILE, uuid), owner=reader)
    headers = {
        "Content-Disposition": content_disposition(record.filename, "inline"),
        "Accept-Ranges": "bytes",
    }
    try:
        part = byte_range(request.headers.get("range"), len(data))
    except Unsatisfiable:
        raise ApiError(
            416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"}
        ) from None
    if part is None:
        return Response(data, media_type=record.content_type, headers=headers)
    first, last = part
    # A player seeking in the audio asks for the part it needs (one range; several get the whole file).
    return Response(
        data[first : last + 1],
        status_code=206,
        media_type=record.content_type,
        headers={**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"},
    )


class Unsatisfiable(ValueError):
    """A byte range that starts past the end (416)."""


_BYTE_RANGE = re.compile(r"bytes=\s*(\d*)\s*-\s*(\d*)\s*")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a `Range` header asks for (RFC 9110: `bytes=first-last`, `first-`,
    `-suffix`), within `size`; None to send everything (no header, several ranges, or one that is not
    well-formed, which the RFC says to ignore); Unsatisfiable if it starts past the end."""
    match = _BYTE_RANGE.fullmatch(header or "")
    if match is None or match[1] == match[2] == "":
        return None
    if match[1] == "":  # the last `suffix` bytes
        suffix = int(match[2])
        if suffix == 0:
            raise Unsatisfiable(header)
        return max(size - suffix, 0), size - 1
    first = int(match[1])
    last = size - 1 if match[2] == "" else min(int(match[2]), size - 1)
    if match[2] != "" and int(match[2]) < first:
        return None
    if first >= size:
        raise Unsatisfiable(header)
    return first, last


@patch(
    "/file/{uuid:str}",
    guards=[signed_in],
    operation_class=json_body(
        "rename", ("filename",), filename=string("The new name.", min_length=1, max_length=255)
    ),
    responses=answers(400, 401, 404),
    summary="Rename a file",
)
async def rename(request: Request, jobs: JobService, principal: Principal, uuid: str) -> Renamed:
    body = await json_object(request)
    if "filename" not in body:
        raise fail(400, "Missing 'filename' field in request body")
    filename = body["filename"]
    if not isinstance(filename, str) or not 1 <= len(filename) <= _MAX_FILENAME:
        raise fail(400, "Filename must be between 1 and 255 characters")
    with not_found_as("File not found or access denied"):
        old, new = await jobs.rename_file(internal_id(ids.FILE, uuid), filename, owner=principal)
    return Renamed("Filename updated successfully", uuid, old.filename, new.filename)


@delete(
    "/file/{uuid:str}",
    status_code=200,
    guards=[signed_in],
    responses=answers(400, 401, 404, 409),
    summary="Delete a file",
)
async def delete_file(jobs: JobService, principal: Principal, uuid: str) -> Deleted:
    file_id = internal_id(ids.FILE, uuid)
    with not_found_as("File not found or access denied"):
        await jobs.file(file_id, owner=principal)
        # The seed deletes a file whatever is queued on it: its transcriptions still to run are cancelled.
        for job in await jobs.jobs_of_file(file_id, owner=principal):
            if not job.finished:
                with contextlib.suppress(Conflict):  # it finished meanwhile
                    await jobs.cancel(job.id, owner=principal)
        record = await jobs.delete_file(file_id, owner=principal)
    return Deleted("File deleted successfully", uuid, record.filename)


def _listed(record: FileRecord) -> FileListed:
    return FileListed(
        ids.FILE.public(record.id),
        record.filename,
        record.content_type,
        record.size_bytes,
        timestamp(record.created_at),
    )
