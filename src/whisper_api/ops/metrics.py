"""Prometheus metrics. One registry per process; every layer records into the metrics named here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_AUDIO_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
_RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)

HTTP_REQUESTS = Counter(
    "whisper_api_http_requests",
    "HTTP requests by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "whisper_api_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "whisper_api_queue_depth", "Transcriptions waiting for a whisper context.", ["model"], registry=REGISTRY
)
IN_FLIGHT = Gauge(
    "whisper_api_in_flight", "Transcriptions running in whisper.cpp now.", ["model"], registry=REGISTRY
)
AUDIO_SECONDS = Counter(
    "whisper_api_audio_seconds", "Seconds of audio transcribed.", ["model", "task"], registry=REGISTRY
)
AUDIO_DURATION = Histogram(
    "whisper_api_audio_duration_seconds",
    "Duration of each request's audio.",
    ["model"],
    buckets=_AUDIO_BUCKETS,
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "whisper_api_processing_seconds",
    "Time whisper.cpp spent on each transcription.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUE_WAIT_SECONDS = Histogram(
    "whisper_api_queue_wait_seconds",
    "Time each transcription waited for a whisper context.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REAL_TIME_FACTOR = Histogram(
    "whisper_api_real_time_factor",
    "Processing seconds per audio second.",
    ["model"],
    buckets=_RTF_BUCKETS,
    registry=REGISTRY,
)
USER_AUDIO_SECONDS = Counter(
    "whisper_api_user_audio_seconds",
    "Seconds of audio charged to each user, by surface.",
    ["user_id", "surface"],
    registry=REGISTRY,
)
USER_TOKENS_CHARGED = Counter(
    "whisper_api_user_tokens_charged",
    "Tokens charged to each user's balance (counted with balances off too), by surface.",
    ["user_id", "surface"],
    registry=REGISTRY,
)
TRANSCRIPTIONS = Counter(
    "whisper_api_transcriptions",
    "Finished transcriptions by outcome (ok, aborted, timeout, error).",
    ["model", "outcome"],
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "whisper_api_rejections",
    "Requests refused before transcription, by reason.",
    ["reason"],
    registry=REGISTRY,
)
DECODE_FAILURES = Counter(
    "whisper_api_decode_failures", "Uploads that could not be decoded, by kind.", ["kind"], registry=REGISTRY
)
MODEL_LOADS = Counter(
    "whisper_api_model_loads",
    "Model weights loaded (one copy per model, shared by its contexts), by model and outcome.",
    ["model", "outcome"],
    registry=REGISTRY,
)
MODEL_LOAD_SECONDS = Histogram(
    "whisper_api_model_load_seconds",
    "Time to load one whisper context.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
MODELS_LOADED = Gauge(
    "whisper_api_models_loaded", "Models with whisper contexts in memory.", registry=REGISTRY
)

WYOMING_CONNECTIONS = Gauge(
    "whisper_api_wyoming_connections", "Wyoming (Home Assistant) connections open now.", registry=REGISTRY
)
WYOMING_REQUESTS = Counter(
    "whisper_api_wyoming_requests",
    "Wyoming transcription requests by outcome (ok, client_closed, server_stopped, or the error code sent).",
    ["outcome"],
    registry=REGISTRY,
)
WYOMING_RESPONSE_SECONDS = Histogram(
    "whisper_api_wyoming_response_seconds",
    "Time from a Wyoming request's audio-stop to its transcript: what a Home Assistant user waits.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
WYOMING_ERRORS = Counter(
    "whisper_api_wyoming_errors",
    "Wyoming error events sent (each ends its connection), by code.",
    ["code"],
    registry=REGISTRY,
)

JOBS_QUEUED = Gauge(
    "whisper_api_jobs_queued",
    "Asynchronous jobs waiting for a worker (the shared queue, as this process last saw it).",
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "whisper_api_job_duration_seconds",
    "Time from a worker claiming a job to its end, by outcome (succeeded, failed, cancelled, released).",
    ["outcome"],
    buckets=(*_LATENCY_BUCKETS, 1800, 3600, 7200),
    registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "whisper_api_job_retries",
    "Jobs claimed again after their worker stopped renewing its lease (died or stalled).",
    registry=REGISTRY,
)
CALLBACKS = Counter(
    "whisper_api_callbacks",
    "Job callback deliveries by outcome (delivered, retry, failed).",
    ["outcome"],
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The metrics page body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
