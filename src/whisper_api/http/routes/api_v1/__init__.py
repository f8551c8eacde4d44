"""Seed 004's API under /api/v1: accounts, sessions, API tokens, files, queued transcriptions and
administration in that service's shapes, status codes and plain-text errors.

An adapter and nothing more: every route calls the accounts service or the job service that the
OpenAI-shaped routes use, so a user, file or job made here is the same one seen everywhere else.
Credentials are `Authorization: Bearer <api-token>` or `Authorization: Basic <session-id>`.
"""

from __future__ import annotations

import msgspec
from litestar import Router, get
from litestar.di import Provide

from whisper_api.accounts.principal import Principal
from whisper_api.http.responses import OPEN
from whisper_api.http.routes.api_v1 import admin, files, transcribe, users
from whisper_api.http.routes.api_v1.common import PREFIX, answers, signed_in
from whisper_api.http.uploads import FORM_OVERHEAD_BYTES
from whisper_api.jobs.service import JobService
from whisper_api.service.transcription import TranscriptionService


class Health(msgspec.Struct):
    status: str


class Model(msgspec.Struct, omit_defaults=True):
    name: str
    #: Bytes on disk, shown to admins.
    size: int | None = None


class Models(msgspec.Struct):
    models: list[Model]


@get("/health", security=OPEN, summary="The server and its database answer")
async def health(jobs: JobService) -> Health:
    await jobs.queue_length()  # a database that does not answer fails this request
    return Health("ok")


@get("/models", guards=[signed_in], responses=answers(401), summary="The whisper models this server has")
async def models(service: TranscriptionService, principal: Principal) -> Models:
    return Models(
        [Model(model.id, model.size if principal.is_admin else None) for model, _loaded in service.models()]
    )


def _anyone() -> None:
    """Who reads a public link: nobody in particular."""


def _signed_in(principal: Principal) -> Principal:
    """Who reads a private link: whoever the guard found."""
    return principal


def router(*, max_upload_bytes: int, public_links: bool) -> Router:
    """The routes, with room for an upload of `max_upload_bytes` (and its form) in the body of the one
    that takes uploads; every other body gets the app's limit, a JSON body's. With `public_links`, a
    file's or transcription's UUID alone reads it, as in the seed; without, only its owner (or an admin)."""
    readers = Router(
        "/",
        route_handlers=[files.download, transcribe.status],
        guards=[] if public_links else [signed_in],
        dependencies={"reader": Provide(_anyone if public_links else _signed_in, sync_to_thread=False)},
    )
    return Router(
        PREFIX,
        tags=["Seed 004 API (/api/v1)"],
        route_handlers=[
            health,
            models,
            users.register,
            users.login,
            users.logout,
            users.read_profile,
            users.update_profile,
            users.delete_account,
            users.list_tokens,
            users.create_token,
            users.revoke_token,
            users.list_sessions,
            Router(
                "/",
                route_handlers=[files.upload],
                request_max_body_size=max_upload_bytes + FORM_OVERHEAD_BYTES,
            ),
            files.list_files,
            readers,
            files.rename,
            files.delete_file,
            transcribe.queue,
            transcribe.list_transcriptions,
            transcribe.delete_transcription,
            admin.list_users,
            admin.update_user,
        ],
    )
