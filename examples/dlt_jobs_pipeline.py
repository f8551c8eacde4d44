"""Load this service's jobs, files and transcripts into DuckDB with dlt's REST API source.

    pip install "dlt[duckdb]"
    WHISPER_API_SERVER=http://127.0.0.1:8000 WHISPER_API_KEY=... python examples/dlt_jobs_pipeline.py

Tables (dataset `whisper_api`): `transcription_jobs`, `files`, and `transcripts` (each succeeded
job's verbose_json result, its segments in `transcripts__segments`). Run it again to refresh:
jobs and files are merged on their ids, so nothing is loaded twice.
"""

from __future__ import annotations

import os
import sys

import dlt
from dlt.sources.rest_api import rest_api_source

SERVER = os.environ.get("WHISPER_API_SERVER", "http://127.0.0.1:8000")
API_KEY = os.environ.get("WHISPER_API_KEY", "")
DATABASE = os.environ.get("WHISPER_API_DUCKDB", "whisper_api.duckdb")


def whisper_api_source(server: str = SERVER, api_key: str = API_KEY):
    # Lists answer {"data": [...], "has_more": ..., "last_id": ...}; the next page is ?after=<last_id>.
    paged = {"type": "cursor", "cursor_path": "last_id", "cursor_param": "after"}
    return rest_api_source(
        {
            "client": {
                "base_url": server.rstrip("/") + "/v1/",
                "auth": {"type": "bearer", "token": api_key} if api_key else None,
                "paginator": paged,
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "transcription_jobs",
                    "endpoint": {
                        "path": "transcription-jobs",
                        "params": {"limit": 100},
                        "data_selector": "data",
                    },
                },
                {
                    "name": "files",
                    "endpoint": {"path": "files", "params": {"limit": 100}, "data_selector": "data"},
                },
                {
                    "name": "transcripts",
                    "primary_key": "_transcription_jobs_id",
                    "endpoint": {
                        "path": "transcription-jobs/{job_id}/result",
                        "params": {
                            "format": "verbose_json",
                            "job_id": {"type": "resolve", "resource": "transcription_jobs", "field": "id"},
                        },
                        "paginator": "single_page",
                        # The whole document (dlt would otherwise take its first list, the segments).
                        "data_selector": "$",
                        # Jobs without a result (queued, running, failed, cancelled) answer 409.
                        "response_actions": [{"status_code": 409, "action": "ignore"}],
                    },
                    "include_from_parent": ["id"],
                },
            ],
        }
    )


def main() -> int:
    pipeline = dlt.pipeline(
        pipeline_name="whisper_api",
        destination=dlt.destinations.duckdb(DATABASE),
        dataset_name="whisper_api",
        pipelines_dir=os.environ.get("DLT_PIPELINES_DIR"),
    )
    print(pipeline.run(whisper_api_source()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
