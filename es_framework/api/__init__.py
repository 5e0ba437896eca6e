"""The scheduler's REST API, metrics and web UI (``--webUiPort``).

:mod:`~es_framework.api.core` defines what the API needs from the scheduler (:class:`ApiCore`);
:mod:`~es_framework.api.app` is the ASGI application (FastAPI), :mod:`~es_framework.api.server`
serves it (uvicorn), :mod:`~es_framework.api.models` describes its bodies (the OpenAPI document is
generated from them), and :mod:`~es_framework.api.metrics` renders ``/metrics``.
:mod:`~es_framework.dev.fake_api` is a development stand-in for the scheduler.
"""

from es_framework.api.app import ApiApp
from es_framework.api.core import ApiCore, ApiError
from es_framework.api.server import ApiServer, serve

__all__ = ["ApiApp", "ApiCore", "ApiError", "ApiServer", "serve"]
