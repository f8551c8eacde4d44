"""The API's documentation pages: Swagger UI at /docs, ReDoc at /docs/redoc (and /redoc).

Their scripts, styles and icon are served by the service from the package (vendor/, see its README),
and ReDoc is told not to fetch its fonts: the pages render on a machine without internet, which is
where this service often runs.
"""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

DOCS_PATH = "/docs"
REDOC_PATH = f"{DOCS_PATH}/redoc"
_ASSETS = f"{DOCS_PATH}/assets"
_VENDOR = Path(__file__).parent / "vendor"
# Without an icon of its own, each page would fetch Litestar's logo from a CDN.
_FAVICON = f"<link rel='icon' type='image/png' href='{_ASSETS}/swagger-ui/favicon-32x32.png'>"


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at the root of the docs path, ReDoc under it, both on the vendored assets."""
    return [
        SwaggerRenderPlugin(
            path="/",
            js_url=f"{_ASSETS}/swagger-ui/swagger-ui-bundle.js",
            css_url=f"{_ASSETS}/swagger-ui/swagger-ui.css",
            standalone_preset_js_url=f"{_ASSETS}/swagger-ui/swagger-ui-standalone-preset.js",
            favicon=_FAVICON,
        ),
        RedocRenderPlugin(
            path=REDOC_PATH.removeprefix(DOCS_PATH),
            js_url=f"{_ASSETS}/redoc/redoc.standalone.js",
            google_fonts=False,
            favicon=_FAVICON,
        ),
    ]


@get("/redoc", include_in_schema=False, sync_to_thread=False)
def _redoc() -> Redirect:
    """Where some clients and docs look for ReDoc."""
    return Redirect(REDOC_PATH)


def docs_routes() -> list[ControllerRouterHandler]:
    """The routes the pages need besides those Litestar's OpenAPI config adds: assets and /redoc."""
    assets = create_static_files_router(_ASSETS, directories=[_VENDOR], include_in_schema=False)
    return [assets, _redoc]
