"""The OpenAPI schema at /openapi.json (rendered at /docs) documents every endpoint."""

from __future__ import annotations

import littlevision.serving as serving

ENDPOINTS = {
    ("post", "/v1/predict"),
    ("post", "/v1/predict/batch"),
    ("post", "/v1/explain"),
    ("post", "/v1/feedback"),
    ("get", "/v1/model"),
    ("post", "/v1/reload"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/v2"),
    ("get", "/v2/health/live"),
    ("get", "/v2/health/ready"),
    ("get", "/v2/models/{model_name}"),
    ("get", "/v2/models/{model_name}/ready"),
    ("get", "/v2/models/{model_name}/versions/{model_version}"),
    ("post", "/v2/models/{model_name}/infer"),
    ("post", "/v2/models/{model_name}/versions/{model_version}/infer"),
}


def test_every_endpoint_is_documented(client):
    schema = client.get("/openapi.json").json()
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert found == ENDPOINTS
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            assert "200" in op["responses"] or "201" in op["responses"], (method, path)
            if method == "post" and path != "/v1/reload":
                assert op.get("requestBody", {}).get("content"), (method, path)


def test_image_endpoints_document_their_three_input_forms_and_errors(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/explain", "/v1/feedback"):
        op = schema["paths"][path]["post"]
        kinds = set(op["requestBody"]["content"])
        assert {"multipart/form-data", "image/*", "application/json"} <= kinds, path
        for status in ("400", "413", "415", "422", "429"):
            assert status in op["responses"], (path, status)
    assert "image/png" in schema["paths"]["/v1/explain"]["post"]["responses"]["200"]["content"]


def test_api_key_is_a_documented_security_scheme(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The service's API key (needed by reload and feedback when one is set).",
    }
    for path in ("/v1/reload", "/v1/feedback"):
        assert schema["paths"][path]["post"]["security"], path
    assert "security" not in schema["paths"]["/v1/predict"]["post"]


def test_docs_page_is_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "openapi.json" in r.text


def test_public_names():
    assert serving.__all__ == ["ServeSettings", "create_app", "serve"]
    for name in serving.__all__:
        assert callable(getattr(serving, name))
