"""Shared dependencies of the endpoints: the runtime, its settings, the model, the API key.

Endpoints ask for these with ``Depends`` instead of reaching for globals, so a test can swap any
of them with ``app.dependency_overrides`` (a stand-in explainer, say) and two apps in one
process never share state.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from littlevision.serving.errors import ApiError
from littlevision.serving.model_store import LoadedModel
from littlevision.serving.runtime import Runtime
from littlevision.serving.settings import ServeSettings

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="The service's API key (needed by reload and feedback when one is set).",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The API key as a bearer token (same key as X-API-Key).",
)


def get_runtime(request: Request) -> Runtime:
    """The runtime of the app answering this request."""
    return request.app.state.runtime


def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ServeSettings:
    return runtime.settings


def get_model(runtime: Annotated[Runtime, Depends(get_runtime)]) -> LoadedModel:
    """The model answering now, pinned for the whole request (a reload does not switch it)."""
    return runtime.model


def require_api_key(
    settings: Annotated[ServeSettings, Depends(get_settings)],
    header_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """Let the request through when no key is configured or the right one is given.

    The comparison takes the same time whatever the given key, so the key cannot be guessed
    one character at a time from response times.

    Raises:
        ApiError: 401 with ``WWW-Authenticate`` when a key is configured and not given, or wrong.
    """
    expected = settings.api_key
    if expected is None:
        return
    given = header_key if header_key is not None else (bearer.credentials if bearer else None)
    if given is None:
        raise ApiError(
            401,
            "unauthorized",
            "This endpoint needs the API key: send it as 'X-API-Key' or 'Authorization: Bearer'.",
            {"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(401, "unauthorized", "The API key is wrong.", {"WWW-Authenticate": "Bearer"})


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
ApiKeyDep = Depends(require_api_key)
