"""A web page for somcolor: upload a photo or video, get it back in color, guided by
colour hints or a reference photo if wanted.

``somcolor serve`` runs :func:`create_app` under uvicorn. Needs the ``web`` extra
(``pip install 'somcolor[web]'``: FastAPI, uvicorn, python-multipart); videos also
need the ``video`` extra. The modules, in request order:

* :mod:`.settings`: the limits and their defaults (imports nothing from the extra);
* :mod:`.ratelimit`: requests per client address, a token bucket each (nor this);
* :mod:`.uploads`: streaming uploads into a private folder, identifying them by content;
* :mod:`.jobs`: background video jobs, bounded and expiring;
* :mod:`.workers`: the worker processes that colorize photos and hold hint sessions;
* :mod:`.hinting`: the hints JSON, and one photo's hint session (in a hint worker);
* :mod:`.sessions`: the registry of hint sessions, bounded and expiring;
* :mod:`.memory`: the memory budget: the process tree measured, work in flight counted;
* :mod:`.server`: what one app holds (models, limits, private folder, pools, jobs,
  sessions);
* :mod:`.routes`: the routes, as FastAPI routers over that state;
* :mod:`.app`: the app itself: state, routers, error answers, headers, the page under
  ``static/``;
* :mod:`.connections`: the HTTP protocol ``somcolor serve`` runs it under: a deadline
  for every phase of a request, caps on connections (:func:`server_options`).
"""

from __future__ import annotations

from .settings import Limits

__all__ = ["Limits", "create_app", "server_options"]


def create_app(*args, **kwargs):
    """Build the FastAPI app; see :func:`somcolor.web.app.create_app`."""
    from .app import create_app

    return create_app(*args, **kwargs)


def server_options(app) -> dict:
    """uvicorn's options for ``app``; see :func:`somcolor.web.connections.server_options`."""
    from .connections import server_options

    return server_options(app)
