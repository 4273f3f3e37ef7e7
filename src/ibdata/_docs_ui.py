"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from files installed with ibdata.

FastAPI's own pages load their scripts from a CDN and stay blank on a host without the
internet. These load the same two UIs from the package data of ``fastapi-standalone-docs``,
pinned by the ``http`` extra: Swagger UI 5.33.1 (npm's ``swagger-ui-dist``, Apache-2.0),
ReDoc 2.5.4 (npm's ``redoc``, MIT, with the one change that its sidebar logo is loaded from
the page's own address) and FastAPI's favicon (MIT); on Python 3.10, which 0.3.0 does not
support, 0.2.0's Swagger UI 5.19.0 and ReDoc 2.4.0 at the same paths. Only that package's
files are used,
never its code, which patches FastAPI for every app in the process.

Nothing on these pages asks another host for anything (tests/test_browser.py checks it in
Chromium): no Google Fonts, no favicon from fastapi.tiangolo.com, and Swagger UI's
``validatorUrl`` is off, so it never sends the schema's address to validator.swagger.io. The
API uses a bearer token, not OAuth2, so there is no OAuth2 redirect page.
"""

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "add_docs"]

#: Where the UIs' scripts, styles and icons are served.
ASSETS = "/docs/assets"

_PACKAGE = "fastapi_standalone_docs"
_REQUIREMENT = "fastapi-standalone-docs"


def _static() -> Path:
    """The directory of the installed UI files, found without importing their package."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the REST adapter's offline /docs and /redoc need {_REQUIREMENT}: "
            "pip install 'ibdata[http]'",
            name=_PACKAGE,
        )
    return Path(spec.origin).parent / "static"


def add_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from installed files.

    Create ``app`` with ``docs_url=None, redoc_url=None`` so that FastAPI's CDN pages do not
    take these paths first. The pages follow a proxy's ``root_path`` as FastAPI's do.

    Args:
        app: the app to add the pages and their assets to.
        openapi_url: the path of the app's schema.

    Raises:
        ModuleNotFoundError: ``fastapi-standalone-docs`` is not installed.
    """
    static = _static()
    app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")

    def prefix(request: Request) -> str:
        root: str = request.scope.get("root_path", "")
        return root.rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/fastapi/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/fastapi/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/redoc/logo-mini.svg", include_in_schema=False)
    async def redoc_logo() -> FileResponse:
        # The packaged ReDoc asks for its logo at the page's path + "/logo-mini.svg".
        return FileResponse(static / "redoc" / "logo-mini.svg", media_type="image/svg+xml")
