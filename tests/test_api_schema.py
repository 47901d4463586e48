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
