"""The engine's values as the service's callers handle them: a transcript and its parts, a model and the
error for a missing one, the sample rate audio is counted in. Named here so the HTTP layer speaks to the
service alone and never reaches into the engine."""

from whisper_api.engine.catalog import ModelFile, ModelNotFound
from whisper_api.engine.types import Segment, Task, Transcript
from whisper_api.engine.whisper import SAMPLE_RATE

__all__ = ["SAMPLE_RATE", "ModelFile", "ModelNotFound", "Segment", "Task", "Transcript"]
