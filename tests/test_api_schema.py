"""Property-based checks of the whole /api/v1 against its own OpenAPI document (schemathesis):
no 5xx, and every response matches the schema. Bounded examples so CI stays quick."""

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from pbschool import create_app
from tests.conftest import make_test_config

# Making an app imports every feature, so every endpoint is in the document.
_app = create_app(make_test_config(Path(tempfile.mkdtemp()), "sqlite://"))
schema = schemathesis.openapi.from_dict(_app.test_client().get("/api/v1/openapi.json").get_json())


@pytest.fixture
def member_headers(app, make, api, backend):
    if backend == "postgresql":
        pytest.skip("the schema fuzz runs once, on SQLite")
    make.user("fuzz", role="admin")
    api.token("fuzz")
    return api.headers


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, app, member_headers):
    response = case.call(app=app, headers=member_headers)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=[checks.not_a_server_error, checks.status_code_conformance,
                                             checks.content_type_conformance,
                                             checks.response_schema_conformance])


HUGE = [2**31, -(2**31), 2**63, 10**30, 1e308]


def _with_huge(value, huge):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return huge
    if isinstance(value, dict):
        return {k: _with_huge(v, huge) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_huge(v, huge) for v in value] or [huge]
    return value


def _nested(value, levels=40):
    for _level in range(levels):
        value = [value]
    return value


def _extremes(case):
    """The case again with every number beyond a database integer, every field nested 40 deep,
    every string 200,000 characters long, and huge ids in the path and the query (issue 12)."""
    body = case.body
    if isinstance(body, dict):
        yield from ({"body": _with_huge(body, h)} for h in HUGE)
        yield {"body": {k: _nested(v) for k, v in body.items()} or {"x": _nested(1)}}
        yield {"body": {k: "x" * 100_000 if isinstance(v, str) else v for k, v in body.items()}}
        yield {"body": _nested(body, 400)}
    for huge in HUGE[:4]:
        if case.path_parameters:
            yield {"path_parameters": {k: huge if isinstance(v, int) else v
                                       for k, v in case.path_parameters.items()}}
        yield {"query": {**(case.query or {}), "branch": str(huge), "limit": str(huge), "offset": str(huge),
                         "page": str(huge)}}


@schema.parametrize()
# One generated example per operation: the extremes are derived from it, eleven calls each.
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
def test_deep_and_huge_values_find_no_5xx(case, app, member_headers):
    for change in _extremes(case):
        for attribute, value in change.items():
            setattr(case, attribute, value)
        response = case.call(app=app, headers=member_headers)
        assert response.status_code < 500, (change.keys(), response.text[:300])
