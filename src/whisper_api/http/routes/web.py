"""The web app at `/`: HTML, CSS and JavaScript modules shipped in the package (http/web/), no build
step. The page is public like any static file; everything it shows comes from the same API every other
client calls, with the key the user gives it."""

from __future__ import annotations

from pathlib import Path

from litestar import HttpMethod, MediaType, get, route
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Assets are small and change with the package: revalidate rather than serve a stale app after an upgrade.
_REVALIDATE = CacheControlHeader(no_cache=True)
# Only this server's own scripts, styles and API; media may also be a local file the user picked (blob:).
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

assets = create_static_files_router(
    "/web", directories=[WEB_DIR], cache_control=_REVALIDATE, include_in_schema=False, name="web"
)


@route("/", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False, cache_control=_REVALIDATE)
async def index() -> File:
    return File(
        WEB_DIR / "index.html",
        filename="index.html",
        content_disposition_type="inline",
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": _CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@get("/favicon.ico", include_in_schema=False, cache_control=_REVALIDATE)
async def favicon() -> File:
    # Browsers ask for it on every page they open, JSON included; a 404 is an error in their console.
    return File(WEB_DIR / "icon.svg", content_disposition_type="inline", media_type="image/svg+xml")
