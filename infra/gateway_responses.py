"""API Gateway's own answers in the app's one error shape, on both deploy paths.

The template carries them as the REST API's `x-amazon-apigateway-gateway-responses`
extension (infra/cloudformation.py); after `chalice deploy`, `apply_gateway_responses` puts
the same ones through the API (devtools/deploy.py). The local gateway answers alike
(devtools/gateway.py).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.platform.errors import RETRY_AFTER_SECONDS
from devtools.stage import ROOT

# API Gateway's own answers (no route, no or a refused key, a failed authorizer, a body too
# large, a timeout, throttling) in the app's one error shape {"error", "message", "fields"}.
# type: (status or None to keep API Gateway's, error code, message or None for API Gateway's,
# extra headers). API Gateway has no route for an unknown path and answers it as
# MISSING_AUTHENTICATION_TOKEN (403): that is a 404 here. An exception in the authorizer
# (SSM down) is AUTHORIZER_FAILURE (500): a 503 with Retry-After, like every outage.
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}  # the routes' and the local gateway's value
GATEWAY_RESPONSES: dict[str, tuple[int | None, str, str | None, dict[str, str]]] = {
    "DEFAULT_4XX": (None, "BadRequest", None, {}),
    "DEFAULT_5XX": (None, "InternalServerError", None, {}),
    "UNAUTHORIZED": (
        401,
        "Unauthorized",
        "an API key is required: Authorization: Bearer <key>",
        {"WWW-Authenticate": "Bearer"},
    ),
    "ACCESS_DENIED": (403, "Forbidden", "this API key is not valid for this route", {}),
    "MISSING_AUTHENTICATION_TOKEN": (404, "NotFound", "no such route: check the method and the path", {}),
    "AUTHORIZER_FAILURE": (503, "ServiceUnavailable", "the API key store is unavailable; try again", RETRY_AFTER),
    "AUTHORIZER_CONFIGURATION_ERROR": (
        503,
        "ServiceUnavailable",
        "the authorizer is unavailable; try again",
        RETRY_AFTER,
    ),
    "UNSUPPORTED_MEDIA_TYPE": (415, "UnsupportedMediaType", None, {}),
    "REQUEST_TOO_LARGE": (413, "PayloadTooLarge", "the request is larger than API Gateway accepts (10 MB)", {}),
    "INTEGRATION_TIMEOUT": (504, "GatewayTimeout", "the API did not answer in time; try again", {}),
    "THROTTLED": (429, "TooManyRequests", "too many requests; slow down", RETRY_AFTER),
}


def _error_template(code: str, message: str | None) -> str:
    # `$context.error.messageString` is API Gateway's message already quoted as a JSON string;
    # fixed messages are JSON-encoded here. No request value (path, header) is echoed, so the
    # body stays valid JSON whatever the client sends.
    quoted = json.dumps(message) if message is not None else "$context.error.messageString"
    return f'{{"error": {json.dumps(code)}, "message": {quoted}, "fields": []}}'


def gateway_responses() -> dict[str, dict[str, Any]]:
    """The REST API's gateway responses, as the `x-amazon-apigateway-gateway-responses` extension.

    Inside the API definition rather than as AWS::ApiGateway::GatewayResponse resources: SAM
    puts the definition with mode=overwrite on every update, which drops gateway responses
    made outside it (serverless-application-model#390), and a change here then also makes a
    new deployment, so it goes live.
    """
    responses = {}
    for kind, (status, code, message, headers) in GATEWAY_RESPONSES.items():
        response: dict[str, Any] = {
            "responseParameters": {f"gatewayresponse.header.{k}": f"'{v}'" for k, v in headers.items()},
            "responseTemplates": {"application/json": _error_template(code, message)},
        }
        if status is not None:
            response["statusCode"] = str(status)
        responses[kind] = response
    return responses


def apply_gateway_responses(deployed_resources: list[dict[str, Any]], stage: str) -> list[str]:
    """Put the gateway responses on the REST API `chalice deploy` made, then redeploy its stage.

    `chalice deploy` builds the API from its own swagger, with no way to add the extension,
    and overwrites the API on every deploy; so this runs after each one. Takes the
    `resources` of `.chalice/deployed/<stage>.json`; returns the response types put.
    """
    from chalicelib.platform.aws import client

    rest_apis = [r for r in deployed_resources if r.get("resource_type") == "rest_api"]
    if not rest_apis:
        return []
    rest_api_id = rest_apis[0]["rest_api_id"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_name = config["stages"][stage].get("api_gateway_stage", config.get("api_gateway_stage", "api"))
    apigateway = client("apigateway")
    for kind, response in gateway_responses().items():
        kwargs: dict[str, Any] = {
            "restApiId": rest_api_id,
            "responseType": kind,
            "responseParameters": response["responseParameters"],
            "responseTemplates": response["responseTemplates"],
        }
        if "statusCode" in response:
            kwargs["statusCode"] = response["statusCode"]
        apigateway.put_gateway_response(**kwargs)
    apigateway.create_deployment(restApiId=rest_api_id, stageName=stage_name, description="gateway responses")
    return sorted(GATEWAY_RESPONSES)
