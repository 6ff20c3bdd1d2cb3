"""The analyst and case-handler web app, served by the scoring service under ``/app/``.

Server-rendered pages (Jinja2 templates), small interactions with htmx and charts
with Vega-Lite, every asset served by the app itself (``static/vendor``, see its
``VERSIONS``): no CDN, no tile server. :func:`create_app` builds the Starlette
app that :mod:`stratum_ml.serving.service` mounts; :mod:`.sessions` keeps the
sessions in the operational store; :mod:`.worklist` builds the work list.
"""

from __future__ import annotations

from stratum_ml.serving.webapp.app import create_app

__all__ = ["create_app"]
