"""Uploaded audio files: /v1/files, in the shape of OpenAI's Files API (the SDK's `client.files`).

Files are stored once per content (sha256) and owner: uploading the same bytes again returns your
file already stored, marked `existed` (another user's upload of the same bytes is theirs, and says
nothing). Several `file` parts in one request are stored all or none: if one is not audio, the request
stores nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from litestar import Request, Response, delete, get, post
from litestar.params import Parameter

from whisper_api.accounts.principal import Principal
from whisper_api.http.auth import require_api_key
from whisper_api.http.errors import bad_request
from whisper_api.http.openapi import FilesOperation
from whisper_api.http.responses import answering_also, errors
from whisper_api.http.uploads import read_multipart
from whisper_api.jobs.service import JobService, Upload
from whisper_api.jobs.views import Deleted, FileList, FileObject, file_list, file_object


@post(
    "/v1/files",
    status_code=200,
    guards=[require_api_key],
    operation_class=FilesOperation,
    responses=errors(400, 401, 413),
    summary="Upload one or more audio files",
)
async def upload_files(request: Request, jobs: JobService, principal: Principal) -> FileObject | FileList:
    _, parts = await read_multipart(request, request.app.state.max_file_bytes)
    uploads = [part for part in parts if part.name in ("file", "file[]", "files")]
    if not uploads:
        raise bad_request("Send one or more files in 'file' fields.", param="file", code="missing_file")
    added = await jobs.add_files(
        [Upload(part.data, part.filename, part.content_type) for part in uploads], owner=principal
    )
    stored = [file_object(record, existed) for record, existed in added]
    # One file answers as OpenAI's file object; several as a list of them.
    return stored[0] if len(stored) == 1 else file_list(stored, has_more=False)


@get(
    "/v1/files",
    guards=[require_api_key],
    responses=errors(400, 401),
    summary="List uploaded files, newest first unless order=asc",
)
async def list_files(
    jobs: JobService,
    principal: Principal,
    limit: Annotated[int, Parameter(ge=1, le=10_000)] = 100,
    after: Annotated[
        str | None, Parameter(description="Return the files that come after this id in `order`.")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"], Parameter(description="By creation time: desc, newest first, or asc.")
    ] = "desc",
) -> FileList:
    page = await jobs.list_files(limit=limit, after=after, owner=principal, oldest_first=order == "asc")
    return file_list([file_object(record) for record in page.items], page.has_more)


@get(
    "/v1/files/{file_id:str}",
    guards=[require_api_key],
    responses=errors(400, 401, 404),
    summary="Describe one file",
)
async def retrieve_file(jobs: JobService, principal: Principal, file_id: str) -> FileObject:
    return file_object(await jobs.file(file_id, owner=principal))


@get(
    "/v1/files/{file_id:str}/content",
    guards=[require_api_key],
    summary="The file's bytes",
    description="In the content type it was uploaded with (application/octet-stream when it had none).",
    # Any type: the uploader's own is sent back, whatever it says (the bytes themselves are audio).
    media_type="application/octet-stream",
    operation_class=answering_also("audio/*", "video/*", "*/*"),
    responses=errors(400, 401, 404),
)
async def file_content(jobs: JobService, principal: Principal, file_id: str) -> Response[bytes]:
    record, data = await jobs.file_content(file_id, owner=principal)
    return Response(
        data,
        media_type=record.content_type,
        headers={"Content-Disposition": content_disposition(record.filename)},
    )


@delete(
    "/v1/files/{file_id:str}",
    status_code=200,
    guards=[require_api_key],
    responses=errors(400, 401, 404, 409),
    summary="Delete a file",
)
async def delete_file(jobs: JobService, principal: Principal, file_id: str) -> Deleted:
    await jobs.delete_file(file_id, owner=principal)
    return Deleted(id=file_id, object="file")


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII name for every client, and the exact one, percent-encoded, for the rest."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
