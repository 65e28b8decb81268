"""The OpenAPI document: valid OpenAPI 3.0, the same operations as the route table, every
reference resolvable, and every view the handlers send conforming to its schema."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from chat.api.handlers import ROUTES
from chat.api.openapi import VIEWS, document, document_bytes, schema_for, view_schema
from chat.api.protocol import json_bytes
from chat.events import MessageView, json_name, to_json


def test_the_document_is_valid_openapi_3() -> None:
    doc = json.loads(document_bytes())
    assert doc["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(doc).validate()


def test_an_invalid_document_would_be_caught() -> None:
    doc = document()
    doc["paths"]["/v1/identity"]["get"]["responses"] = "nope"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(doc).validate()


def _operations() -> set[tuple[str, str, str]]:
    return {
        (method.upper(), path, operation["operationId"])
        for path, item in document()["paths"].items()
        for method, operation in item.items()
    }


def test_operations_are_exactly_the_routes() -> None:
    assert _operations() == {*ROUTES, ("GET", "/openapi.json", "openapi")}


def test_only_the_document_itself_needs_no_token() -> None:
    doc = document()
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    unauthenticated = [
        path
        for path, item in doc["paths"].items()
        for operation in item.values()
        if operation.get("security") == []
    ]
    assert unauthenticated == ["/openapi.json"]
    for path, item in doc["paths"].items():
        for operation in item.values():
            assert ("401" in operation["responses"]) is (path != "/openapi.json")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    doc = document()
    refs = _refs(doc)
    assert refs
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)


def test_view_schemas_list_every_field_as_required() -> None:
    for view in VIEWS:
        schema = view_schema(view)
        names = [json_name(f.name) for f in dataclasses.fields(view)]  # from_ is "from"
        assert list(schema["properties"]) == names
        assert schema["required"] == names
    message = view_schema(MessageView)["properties"]
    assert message["timestamp"]["type"] == "number"
    assert message["state_reason"] == {
        "type": "string",
        "nullable": True,
        "description": message["state_reason"]["description"],
    }
    assert message["attempts"] == {"type": "integer"}


def test_unsupported_field_types_are_refused() -> None:
    with pytest.raises(TypeError):
        schema_for(set[int])
    with pytest.raises(TypeError):
        schema_for(int | str | None)


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` becomes 'or null'."""
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _validator(name: str) -> jsonschema_rs.Validator:
    components = _json_schema(document()["components"])
    return jsonschema_rs.Draft7Validator(
        {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "components": components}
    )


VALIDATORS = {view: _validator(view.__name__) for view in VIEWS}

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)


finite = st.floats(allow_nan=False, allow_infinity=False)


def _view_strategy(view: type) -> st.SearchStrategy[Any]:
    # Times are finite numbers and evidence is free-form JSON; everything else follows the
    # dataclass's own type hints.
    overrides: dict[str, st.SearchStrategy[Any]] = {}
    for name, hint in typing.get_type_hints(view).items():
        if hint is float:
            overrides[name] = finite
        elif hint == float | None:
            overrides[name] = st.none() | finite
        elif name == "evidence":
            overrides[name] = st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)
    return st.builds(view, **overrides)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
@given(data=st.data())
def test_every_view_conforms_to_its_schema(view: type, data: st.DataObject) -> None:
    instance = data.draw(_view_strategy(view))
    VALIDATORS[view].validate(json.loads(json_bytes(to_json(instance))))


def test_a_view_missing_a_field_does_not_conform() -> None:
    body = to_json(MessageView("m", "c", "cw1", "t", True, 1.0, "queued"))
    del body["state"]
    with pytest.raises(jsonschema_rs.ValidationError):
        VALIDATORS[MessageView].validate(body)


def test_links_name_real_operations_and_their_parameters() -> None:
    doc = document()
    operations = {
        operation["operationId"]: operation
        for item in doc["paths"].values()
        for operation in item.values()
    }
    links = [
        link
        for item in doc["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 10
    for link in links:
        target = operations[link["operationId"]]
        names = {p["name"] for p in target.get("parameters", ())}
        assert set(link["parameters"]) <= names
