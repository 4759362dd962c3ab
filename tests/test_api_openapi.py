"""The OpenAPI document is valid, and it describes exactly the routes the app serves under /api/v1."""
import re

import pytest
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from portal.accounts import auth
from portal.extensions import db
from portal.packages.states import State

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served_operations(app) -> set[tuple[str, str]]:
    """(path, method) of every /api/v1 route, with Flask's <int:x> written as OpenAPI's {x}."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            operations |= {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}
    return operations


def documented_operations(document: dict) -> set[tuple[str, str]]:
    """(path, method) of every operation in the document."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(path, method) for path, item in document["paths"].items() for method in item if method in methods}


def test_the_served_document_is_valid_openapi_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.is_json
    document = response.json
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": document["components"]["securitySchemes"]["tokenAuth"]["description"]}
    assert document["security"] == [{"tokenAuth": []}]


def test_every_api_route_is_documented_and_every_documented_route_exists(app, client):
    document = client.get("/api/v1/openapi.json").json
    served = served_operations(app)
    assert ("/api/v1/oms/packages/{package_id}/command/", "post") in served
    assert documented_operations(document) == served


def test_every_operation_documents_its_errors_in_the_shared_error_shape(client):
    document = client.get("/api/v1/openapi.json").json
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:
                continue  # public: no token, so no 401
            assert "401" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    name = response["$ref"].rsplit("/", 1)[-1]
                    schema = document["components"]["responses"][name]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def conforms(document: dict, name: str, value) -> None:
    """Assert that value is valid against the document's component schema `name` (every $ref resolved)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator(schema).validate(value)


def test_real_answers_conform_to_their_generated_schemas(client, make):
    document = client.get("/api/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    package = make.package(state=State.PACKED)
    headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    detail = client.get(f"/api/v1/oms/packages/{package.id}/", headers=headers).json
    conforms(document, "PackageDetail", detail)
    assert set(schemas["PackageDetail"]["required"]) == set(detail)
    assert set(schemas["PackageItem"]["required"]) == set(detail["items"][0])
    for transition in client.get("/api/v1/oms/transitions/", headers=headers).json:
        conforms(document, "Transition", transition)
    page = client.get("/api/v1/oms/packages/", headers=headers).json
    conforms(document, "PackagePage", page)
    with pytest.raises(ValidationError):  # the check can fail: a field missing from an answer is caught
        conforms(document, "PackageDetail", {k: v for k, v in detail.items() if k != "version"})


def test_request_bodies_refuse_unknown_fields_in_the_document_too(client):
    document = client.get("/api/v1/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"]
            schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            assert schema["additionalProperties"] is False, (method, path)


def test_a_webhook_without_its_required_fields_is_a_400_naming_each(client, make):
    """The drift issue 7 found: the document called target_url and event_type required, the route answered 500."""
    headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    document = client.get("/api/v1/openapi.json").json
    ref = document["paths"]["/api/v1/whisperer/hooks/"]["post"]["requestBody"]["content"]["application/json"]
    assert set(document["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[-1]]["required"]) == {
        "event_type", "target_url"}
    for body, field in (({"event_type": "*"}, "target_url"), ({"target_url": "https://example.com/"}, "event_type")):
        response = client.post("/api/v1/whisperer/hooks/", headers=headers, json=body)
        assert response.status_code == 400, response.json
        assert response.json["code"] == "validation_error" and response.json["field"] == field
        assert response.json["detail"] == f"{field} is required."
