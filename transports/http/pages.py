"""The browser demo's static files (demos/web) at ``/``: one GET route per file, no
catch-all, so nothing else is shadowed. The files are listed when the app is built, not
at import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse


def web_dir() -> Path:
    """demos/web: the browser page's static files."""
    from voxwire import demos

    return Path(demos.__file__).parent / "web"


def page_files() -> dict[str, Path]:
    """URL path -> file of every static file of the page (`/` is index.html)."""
    root = web_dir()
    if not root.is_dir():
        return {}
    files = {"/" + p.name: p for p in sorted(root.iterdir()) if p.is_file()}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def page_router(files: Mapping[str, Path]) -> APIRouter:
    """One GET route per file of `files` (URL path -> file, from :func:`page_files`)."""
    api = APIRouter(include_in_schema=False)
    for path, file in files.items():
        api.add_api_route(path, _file_endpoint(file), methods=["GET", "HEAD"])
    return api


def _file_endpoint(file: Path) -> Callable[[], FileResponse]:
    def serve() -> FileResponse:
        return FileResponse(
            file, media_type=_MEDIA_TYPES.get(file.suffix), headers={"Cache-Control": "no-cache"}
        )

    return serve
