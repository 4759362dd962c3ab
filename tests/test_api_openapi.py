"""The OpenAPI document is valid, and it describes exactly the routes the app serves under /api/v1."""
import re

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


def test_a_real_package_answer_has_every_required_field_of_its_schema(client, make):
    document = client.get("/api/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    package = make.package(state=State.PACKED)
    headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
    detail = client.get(f"/api/v1/oms/packages/{package.id}/", headers=headers).json
    required = set(schemas["Package"]["required"]) | set(schemas["PackageDetail"]["allOf"][1]["required"])
    assert required <= set(detail)
    assert set(detail) <= set(schemas["Package"]["properties"]) | {"items", "transitions"}
    assert set(schemas["PackageItem"]["required"]) == set(detail["items"][0])
    transition = client.get("/api/v1/oms/transitions/", headers=headers).json[0]
    assert set(schemas["Transition"]["required"]) == set(transition)
