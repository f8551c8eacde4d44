"""GET /v1/models and /v1/models/{id}, in OpenAI's shape with size, multilingual and loaded added."""

from __future__ import annotations

from litestar import get

from whisper_api.engine.engine import Engine
from whisper_api.http import schemas
from whisper_api.http.auth import require_api_key
from whisper_api.http.responses import errors


@get(
    "/v1/models",
    guards=[require_api_key],
    responses=errors(401),
    summary="List the models in the models directory",
)
async def list_models(engine: Engine) -> schemas.ModelList:
    models = engine.catalog.list()
    return schemas.ModelList(data=[schemas.model_object(m, loaded=engine.is_loaded(m.id)) for m in models])


@get(
    "/v1/models/{model_id:str}",
    guards=[require_api_key],
    responses=errors(400, 401, 404),
    summary="Describe one model",
)
async def retrieve_model(engine: Engine, model_id: str) -> schemas.ModelObject:
    model = engine.catalog.resolve(model_id)
    return schemas.model_object(model, loaded=engine.is_loaded(model.id))
