"""Uploaded audio files: /v1/files, in the shape of OpenAI's Files API (the SDK's `client.files`).

Files are stored once per content (sha256): uploading the same bytes again returns the file
already stored, marked `existed`. Several `file` parts in one request are stored one by one.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, post
from litestar.params import Parameter

from whisper_api.http.auth import require_api_key
from whisper_api.http.errors import bad_request
from whisper_api.http.uploads import read_multipart
from whisper_api.jobs.service import JobService
from whisper_api.jobs.views import Deleted, FileList, FileObject, file_list, file_object


@post("/v1/files", status_code=200, guards=[require_api_key], summary="Upload one or more audio files")
async def upload_files(request: Request, jobs: JobService) -> FileObject | FileList:
    _, parts = await read_multipart(request, request.app.state.max_file_bytes)
    uploads = [part for part in parts if part.name in ("file", "file[]", "files")]
    if not uploads:
        raise bad_request("Send one or more files in 'file' fields.", param="file", code="missing_file")
    stored = []
    for part in uploads:
        record, existed = await jobs.add_file(part.data, part.filename, part.content_type)
        stored.append(file_object(record, existed))
    # One file answers as OpenAI's file object; several as a list of them.
    return stored[0] if len(stored) == 1 else file_list(stored, has_more=False)


@get("/v1/files", guards=[require_api_key], summary="List uploaded files, newest first")
async def list_files(
    jobs: JobService,
    limit: Annotated[int, Parameter(ge=1, le=10_000)] = 100,
    after: Annotated[str | None, Parameter(description="Return files after (older than) this id.")] = None,
) -> FileList:
    page = await jobs.list_files(limit=limit, after=after)
    return file_list([file_object(record) for record in page.items], page.has_more)


@get("/v1/files/{file_id:str}", guards=[require_api_key], summary="Describe one file")
async def retrieve_file(jobs: JobService, file_id: str) -> FileObject:
    return file_object(await jobs.file(file_id))


@get("/v1/files/{file_id:str}/content", guards=[require_api_key], summary="The file's bytes")
async def file_content(jobs: JobService, file_id: str) -> Response[bytes]:
    record, data = await jobs.file_content(file_id)
    return Response(
        data,
        media_type=record.content_type or "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{_quoted(record.filename)}"'},
    )


@delete("/v1/files/{file_id:str}", status_code=200, guards=[require_api_key], summary="Delete a file")
async def delete_file(jobs: JobService, file_id: str) -> Deleted:
    await jobs.delete_file(file_id)
    return Deleted(id=file_id, object="file")


def _quoted(filename: str) -> str:
    return "".join(c for c in filename if c.isprintable() and c not in '"\\')
