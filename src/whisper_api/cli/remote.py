"""`whisper-api jobs ...`: a client of a running server's job API (submit, list, get, cancel, result).

It speaks HTTP only, so it works against any whisper-api server, local or remote: `--server` (or
WHISPER_API_SERVER) and `--api-key` (or WHISPER_API_KEY).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from tqdm import tqdm

FINISHED = {"succeeded", "failed", "cancelled"}
_POLL_SECONDS = 0.5


class RemoteError(Exception):
    """The server refused or could not be reached; the message says why, for the terminal."""


@dataclass(frozen=True)
class JobsClient:
    server: str
    api_key: str | None = None
    timeout: float = 300.0

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.server.rstrip("/"), headers=headers, timeout=self.timeout)

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            with self._client() as client:
                response = client.request(method, path, **options)
        except httpx.TransportError as error:
            raise RemoteError(f"cannot reach {self.server}: {error}") from None
        if response.is_error:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise RemoteError(f"HTTP {response.status_code}: {message}")
        return response

    def submit(
        self,
        *,
        file: Path | None = None,
        url: str | None = None,
        file_id: str | None = None,
        fields: dict[str, str] | None = None,
        formats: Sequence[str] = (),
    ) -> dict[str, Any]:
        values = {key: value for key, value in (fields or {}).items() if value is not None}
        if formats:
            values["formats"] = ",".join(formats)
        if file is not None:
            with file.open("rb") as audio:
                response = self._call(
                    "POST", "/v1/transcription-jobs", data=values, files={"file": (file.name, audio)}
                )
        else:
            body = {**values, "url": url, "file_id": file_id}
            response = self._call("POST", "/v1/transcription-jobs", json={k: v for k, v in body.items() if v})
        return response.json()

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/transcription-jobs/{job_id}").json()

    def list(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        params = {"limit": limit, **({"status": status} if status else {})}
        return self._call("GET", "/v1/transcription-jobs", params=params).json()["data"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/transcription-jobs/{job_id}/cancel").json()

    def result(self, job_id: str, response_format: str) -> str:
        return self._call(
            "GET", f"/v1/transcription-jobs/{job_id}/result", params={"format": response_format}
        ).text

    def wait(self, job_id: str, *, show_progress: bool = True) -> dict[str, Any]:
        """Poll until the job finishes, with a progress bar on stderr."""
        with tqdm(total=100, unit="%", desc=job_id, disable=not show_progress, file=sys.stderr) as bar:
            while True:
                job = self.get(job_id)
                bar.set_postfix_str(job["status"])
                bar.update(round(job["progress"] * 100) - bar.n)
                if job["status"] in FINISHED:
                    return job
                time.sleep(_POLL_SECONDS)


def show(job: dict[str, Any]) -> str:
    return msgspec.json.format(msgspec.json.encode(job)).decode()


def summary(job: dict[str, Any]) -> str:
    source = job.get("url") or job.get("file_id") or "-"
    error = f"  {job['error']['code']}" if job.get("error") else ""
    return f"{job['id']}  {job['status']:9}  {job['progress']:4.0%}  {source}{error}"
