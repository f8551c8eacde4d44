"""GET /v1/models and /v1/models/{id}, in OpenAI's shape with size, multilingual and loaded added; the
operator's aliases (--model-alias) are listed after the models, each naming the model it stands for."""

from __future__ import annotations

from litestar import get

from whisper_api.http import schemas
from whisper_api.http.auth import require_api_key
from whisper_api.http.responses import errors
from whisper_api.service.transcription import TranscriptionService


@get(
    "/v1/models",
    guards=[require_api_key],
    responses=errors(401),
    summary="List the models in the models directory",
)
async def list_models(service: TranscriptionService) -> schemas.ModelList:
    models = [schemas.model_object(model, loaded=loaded) for model, loaded in service.models()]
    aliases = [
        schemas.model_object(model, loaded=service.is_loaded(model), alias=alias)
        for alias, model in service.aliases()
    ]
    return schemas.ModelList(data=models + aliases)


@get(
    "/v1/models/{model_id:str}",
    guards=[require_api_key],
    responses=errors(400, 401, 404),
    summary="Describe one model",
)
async def retrieve_model(service: TranscriptionService, model_id: str) -> schemas.ModelObject:
    model = service.model(model_id)
    alias = model_id.strip() if service.is_alias(model_id) else None
    return schemas.model_object(model, loaded=service.is_loaded(model), alias=alias)
