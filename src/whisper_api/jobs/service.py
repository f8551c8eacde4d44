"""Asynchronous transcription jobs and uploaded files, as the HTTP layer and the CLI see them.

Every call names who asks (`owner`, a Principal): a user sees and changes only what they own, and
another user's id is "not found", exactly like an id that never existed; admins see everything.

Submitting checks everything that can be checked at once (the model exists and can do what is
asked, the audio decodes, the URLs are http(s)), so a job that is accepted fails later only for what
could not be known then (a URL that does not answer, a worker that keeps dying). Running jobs is
the runner's (runner.py); this module only writes requests and reads outcomes.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService
from whisper_api.audio import AudioError, probe_audio
from whisper_api.engine.types import DecodeOptions, Transcript
from whisper_api.errors import NotFoundError
from whisper_api.jobs.codec import decode_transcript, encode_options
from whisper_api.jobs.media import MediaStore, digest
from whisper_api.jobs.store import (
    Conflict,
    FileRecord,
    JobRecord,
    NewFile,
    Page,
    StorageQuotaExceeded,
    Store,
)
from whisper_api.service.fetch import FetchError, FetchPolicy, check_destination
from whisper_api.service.transcription import InvalidRequest, TranscriptionService

RESULT_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "tsv", "verbose_json")
#: The store's column widths.
_MAX_FILENAME = 255
_MAX_MEDIA_TYPE = 127
#: What an upload's type is when its client did not say: curl's for an extension it does not know, and
#: multipart's for a part without one (requests sends none).
_UNSAID_MEDIA_TYPES = {"", "application/octet-stream", "text/plain"}


class NotFound(NotFoundError):
    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"No {what} with id '{identifier}'.", code=f"{what}_not_found")


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What to transcribe and how, as the caller asked for it."""

    model: str | None
    options: DecodeOptions
    formats: tuple[str, ...] = ("json",)
    include_logprobs: bool = False
    callback_url: str | None = None


class JobService:
    def __init__(
        self,
        store: Store,
        media: MediaStore,
        transcription: TranscriptionService,
        *,
        max_audio_seconds: float,
        fetch_policy: FetchPolicy,
        callbacks_signed: bool = False,
        on_submit: Callable[[], None] | None = None,
        accounts: AccountService | None = None,
        max_user_storage_bytes: int = 0,
    ) -> None:
        self.store = store
        #: What one owner's files may take in all (0: no limit), so no tenant can fill the shared disk.
        self.max_user_storage_bytes = max_user_storage_bytes
        #: Refuses a job whose audio its owner's balance cannot pay for (it is charged when it runs).
        self.accounts = accounts
        self.media = media
        self.transcription = transcription
        self.max_audio_seconds = max_audio_seconds
        #: What URLs may point at; a URL it refuses is refused at submission, not when the job runs.
        self.fetch_policy = fetch_policy
        #: Callbacks are only sent signed: without the secret, callback URLs are refused.
        self.callbacks_signed = callbacks_signed
        #: Wakes this process's runner at once, instead of at its next poll.
        self._on_submit = on_submit

    # -- files ---------------------------------------------------------------------------------

    async def add_files(
        self, uploads: Sequence[Upload], *, owner: Principal
    ) -> list[tuple[FileRecord, bool]]:
        """Store uploads (once per content and owner): all of them, or none if one is not audio this
        service can decode (AudioError, naming the file when there are several); each with whether
        the owner had it already."""
        return [(record, existed) for record, existed, _ in await self._add_files(uploads, owner)]

    async def _add_files(
        self, uploads: Sequence[Upload], owner: Principal
    ) -> list[tuple[FileRecord, bool, float]]:
        """`add_files`, with each file's seconds of audio.

        Each is probed, not decoded: its length is the container's word, or counted frame by frame where
        the container gives none, so checking hours of audio holds none of it as samples. The runner
        decodes it once, when it runs, under the same limit."""
        new = await asyncio.to_thread(_new_files, uploads)
        await self._check_room(new, owner)
        durations = []
        for upload in uploads:
            try:
                durations.append(
                    await asyncio.to_thread(probe_audio, upload.data, max_seconds=self.max_audio_seconds)
                )
            except AudioError as error:
                if len(uploads) == 1:
                    raise
                # The kind of error stays (its code); the message names the file at fault.
                raise AudioError(f"{upload.filename!r}: {error.message}", code=error.code) from None
        for upload, item in zip(uploads, new, strict=True):
            await asyncio.to_thread(self.media.put, upload.data, item.sha256)
        try:
            added = await self.store.call(
                self.store.add_files, new, owner_id=owner.user_id, quota_bytes=self.max_user_storage_bytes
            )
        except StorageQuotaExceeded:
            # Another upload of the owner's took the room meanwhile: drop the bytes no record points at.
            for item in new:
                if not await self.store.call(self.store.file_in_use, item.sha256):
                    await asyncio.to_thread(self.media.remove, item.sha256)
            raise
        return [(*pair, seconds) for pair, seconds in zip(added, durations, strict=True)]

    async def check_room(self, uploads: Sequence[Upload], *, owner: Principal) -> None:
        """StorageQuotaExceeded if the owner's files cannot take all of `uploads` (what they hold
        already costs nothing), before anything is stored."""
        await self._check_room(await asyncio.to_thread(_new_files, uploads), owner)

    async def _check_room(self, new: Sequence[NewFile], owner: Principal) -> None:
        await self.store.call(
            self.store.check_room, new, owner_id=owner.user_id, quota_bytes=self.max_user_storage_bytes
        )

    async def storage(self, owner: Principal) -> tuple[int, int]:
        """What the owner's files take, and their quota (0: none), in bytes."""
        used = await self.store.call(self.store.storage_used, owner.user_id)
        return used, self.max_user_storage_bytes

    async def file(self, file_id: str, *, owner: Principal | None) -> FileRecord:
        return await self._found("file", file_id, self.store.file, owner)

    async def file_content(self, file_id: str, *, owner: Principal | None) -> tuple[FileRecord, bytes]:
        record = await self.file(file_id, owner=owner)
        return record, await asyncio.to_thread(self.media.read, record.sha256)

    async def list_files(
        self, *, limit: int, after: str | None, owner: Principal, oldest_first: bool = False
    ) -> Page:
        return await self.store.call(
            self.store.list_files,
            limit=limit,
            after=after,
            owner=owner.owner_scope,
            oldest_first=oldest_first,
        )

    async def file_page(self, *, owner: Principal, offset: int, limit: int) -> tuple[list[FileRecord], int]:
        """One page of the owner's files, newest first, and how many there are in all."""
        return await self.store.call(
            self.store.file_page, owner=owner.owner_scope, offset=offset, limit=limit
        )

    async def rename_file(
        self, file_id: str, filename: str, *, owner: Principal
    ) -> tuple[FileRecord, FileRecord]:
        """The file before and after its name became `filename` (1 to 255 characters)."""
        if not 1 <= len(filename) <= _MAX_FILENAME or "\x00" in filename:
            raise InvalidRequest(
                f"filename must be between 1 and {_MAX_FILENAME} characters, none of them NUL.",
                param="filename",
            )
        old = await self.file(file_id, owner=owner)
        new = await self._found("file", file_id, self.store.rename_file, owner, filename)
        return old, new

    async def delete_file(self, file_id: str, *, owner: Principal) -> FileRecord:
        record = await self._found("file", file_id, self.store.delete_file, owner)
        if not await self.store.call(self.store.file_in_use, record.sha256):
            await asyncio.to_thread(self.media.remove, record.sha256)
        return record

    # -- jobs ----------------------------------------------------------------------------------

    async def submit(
        self,
        request: JobRequest,
        *,
        upload: Upload | None = None,
        file_id: str | None = None,
        url: str | None = None,
        owner: Principal,
    ) -> JobRecord:
        """Queue a job for exactly one audio source: an upload, an uploaded file's id, or a URL the
        worker fetches."""
        if sum(source is not None for source in (upload, file_id, url)) != 1:
            raise InvalidRequest(
                "Give the audio one way: a 'file' upload, a 'file_id' from /v1/files, or a 'url'.",
                param="file",
                code="invalid_source",
            )
        model = self.transcription.model(request.model)
        self.transcription.check(model, request.options)
        _check_formats(request.formats)
        if request.callback_url is not None and not self.callbacks_signed:
            raise InvalidRequest(
                "This server sends no callbacks: it has no secret to sign them with (the operator sets "
                "--callback-secret). Poll the job instead.",
                param="callback_url",
                code="callbacks_unavailable",
            )
        for name, value in (("url", url), ("callback_url", request.callback_url)):
            if value is not None:
                await _check_url(value, name, self.fetch_policy)
        if upload is not None:
            [(record, _, seconds)] = await self._add_files([upload], owner)
            file_id = record.id
            await self._affordable(owner, seconds)
        elif file_id is not None:
            record = await self.file(file_id, owner=owner)
            if self.accounts is not None and self.accounts.pays(owner.user_id):
                seconds = await asyncio.to_thread(probe_audio, self.media.path(record.sha256))
                await self._affordable(owner, seconds)
        job = await self.store.call(
            self.store.submit,
            model=model.id,
            request={
                "options": encode_options(request.options),
                "include_logprobs": request.include_logprobs,
            },
            formats=request.formats,
            file_id=file_id,
            source_url=url,
            callback_url=request.callback_url,
            owner_id=owner.user_id,
        )
        if self._on_submit is not None:
            self._on_submit()
        return job

    async def job(self, job_id: str, *, owner: Principal | None) -> JobRecord:
        return await self._found("job", job_id, self.store.job, owner)

    async def job_page(self, *, owner: Principal, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        """One page of the owner's jobs, newest first, and how many there are in all."""
        return await self.store.call(self.store.job_page, owner=owner.owner_scope, offset=offset, limit=limit)

    async def jobs_of_file(self, file_id: str, *, owner: Principal | None) -> list[JobRecord]:
        """The jobs made from one file, oldest first (None: whoever owns them)."""
        scope = None if owner is None else owner.owner_scope
        return await self.store.call(self.store.jobs_of_file, file_id, owner=scope)

    async def list_jobs(self, *, limit: int, after: str | None, status: str | None, owner: Principal) -> Page:
        return await self.store.call(
            self.store.list_jobs, limit=limit, after=after, status=status, owner=owner.owner_scope
        )

    async def cancel(self, job_id: str, *, owner: Principal) -> JobRecord:
        return await self._found("job", job_id, self.store.cancel, owner)

    async def delete(self, job_id: str, *, owner: Principal) -> JobRecord:
        return await self._found("job", job_id, self.store.delete_job, owner)

    async def result(self, job_id: str, *, owner: Principal | None) -> tuple[JobRecord, Transcript]:
        """The job's one stored result; Conflict while it has none (not finished, or failed)."""
        record = await self.job(job_id, owner=owner)
        data = await self.store.call(self.store.result, record.id) if record.has_result else None
        if data is None:
            raise Conflict(
                f"Job '{job_id}' is {record.status}; a result exists once it has succeeded.",
                "result_not_ready" if record.status in ("queued", "running") else f"job_{record.status}",
            )
        return record, await asyncio.to_thread(decode_transcript, data)

    async def queue_length(self) -> int:
        return await self.store.call(self.store.queue_length)

    async def _affordable(self, owner: Principal, seconds: float) -> None:
        if self.accounts is not None:
            await self.accounts.check_balance(owner, seconds)

    async def _found(
        self, kind: str, identifier: str, lookup: Callable[..., Any], owner: Principal | None, *args: Any
    ) -> Any:
        """`lookup(identifier, *args)`, a store method, on the store's threads, limited to what `owner`
        may see (None: no limit, for reads that are public by id); NotFound if there is no such record,
        or it is someone else's."""
        scope = None if owner is None else owner.owner_scope
        record = await self.store.call(lookup, identifier, *args, owner=scope)
        if record is None:
            raise NotFound(kind, identifier)
        return record


def _check_formats(formats: Sequence[Any]) -> None:
    unknown = [value for value in formats if value not in RESULT_FORMATS]
    if unknown or not formats:
        raise InvalidRequest(
            f"formats must be one or more of {', '.join(RESULT_FORMATS)}; got {_shown(unknown)}."
            if unknown
            else "formats must name at least one format.",
            param="formats",
            code="unsupported_value",
        )


def _new_files(uploads: Sequence[Upload]) -> list[NewFile]:
    return [
        NewFile(
            digest(upload.data),
            upload.filename[:_MAX_FILENAME] or "upload",
            _media_type(upload.content_type, upload.filename),
            len(upload.data),
        )
        for upload in uploads
    ]


def _media_type(declared: str, filename: str) -> str:
    """The client's content type if it looks like one (it is sent back as a header); where the client
    named none, the audio or video type of the file's extension; else a neutral one."""
    if declared.partition(";")[0].strip().lower() in _UNSAID_MEDIA_TYPES:
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        return guessed if guessed and guessed.startswith(("audio/", "video/")) else "application/octet-stream"
    sendable = declared.isascii() and declared.isprintable() and "/" in declared
    return declared if sendable and len(declared) <= _MAX_MEDIA_TYPE else "application/octet-stream"


def _shown(values: Sequence[Any], most: int = 3) -> str:
    """A few of `values`, each cut short: an error message does not echo a client's megabytes."""
    shown = ", ".join(repr(str(value)[:40]) for value in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


async def _check_url(url: str, name: str, policy: FetchPolicy) -> None:
    try:
        await check_destination(url, policy)
    except FetchError as error:
        if error.code == "url_not_allowed":
            raise InvalidRequest(f"'{name}': {error.message}", param=name, code=error.code) from None
        raise InvalidRequest(
            f"'{name}' must be an http:// or https:// URL with a host name.", param=name, code="invalid_url"
        ) from None
