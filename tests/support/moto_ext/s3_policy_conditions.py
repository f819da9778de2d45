"""Bucket-policy conditions evaluated against the request, as AWS does.

AWS evaluates a statement only when its Condition holds for the request's context; a Deny
whose condition does not hold does not apply, and an explicit Deny that applies overrides
any Allow.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
moto 5.2.5 never gives a bucket policy the request's context, and any statement with a
Condition it cannot verify answers DENIED: a TLS-only Deny refuses every object request,
HTTPS or not, and so does a Deny on uploads that use another KMS key.

Context keys filled in from the request (the ones S3 documents for object requests):
- ``aws:SecureTransport``: whether the request arrived over TLS.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport
- ``s3:TlsVersion``: the TLS version of the connection, e.g. ``1.3``.
- ``s3:x-amz-server-side-encryption`` and ``s3:x-amz-server-side-encryption-aws-kms-key-id``:
  the request's SSE headers, present only when the request sends them.
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html
Action, Resource and Principal matching stay moto's own.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.s3.models import FakeBucket

from . import request
from ._extension import Extension

DOC = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"

# Request headers S3 exposes as condition keys of the same name under `s3:`.
_SSE_HEADERS = ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id")


class RequestConditions(dict):
    """The condition context of one request (lower-case keys); its type marks a policy check
    this layer evaluates, so every other use of moto's policy code is left as it was."""


def condition_context(environ: dict[str, Any]) -> RequestConditions:
    context = RequestConditions()
    secure = environ.get("wsgi.url_scheme") == "https"
    context["aws:securetransport"] = "true" if secure else "false"
    tls = environ.get(request.TLS_VERSION_KEY)
    if secure and isinstance(tls, str) and tls.startswith("TLSv"):
        context["s3:tlsversion"] = tls.removeprefix("TLSv")
    for header in _SSE_HEADERS:
        value = environ.get("HTTP_" + header.upper().replace("-", "_"))
        if value is not None:
            context["s3:" + header] = value
    return context


# S3 authorizes HEAD with s3:GetObject and a browser-form POST with s3:PutObject; moto names
# the action after the HTTP method.
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
# https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html
_ACTION_OF_METHOD = {"s3:HeadObject": "s3:GetObject", "s3:PostObject": "s3:PutObject"}


def _string_match(operator: str, actual: str, expected: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual == expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if operator in ("StringLike", "ArnLike"):
        return fnmatch.fnmatchcase(actual, expected)
    if operator == "Bool":
        return actual.lower() == expected.lower()
    if operator.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {
            "NumericEquals": a == e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[operator]
    raise KeyError(operator)


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _operator_holds(operator: str, key: str, expected: Any, context: RequestConditions) -> bool:
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in (expected if isinstance(expected, list) else [expected])]
    actual = context.get(key.lower())
    if operator == "Null":
        # "true": the key must be absent; "false": present.
        return any((actual is None) == (v.lower() == "true") for v in values)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if actual is None:
        # A missing key matches nothing; a negated operator then holds, and ...IfExists holds
        # whatever the operator ("the condition key is not present ... evaluates to true").
        return if_exists or base in _NEGATED
    if base in _NEGATED:
        # Negated operators hold when no listed value matches.
        return not any(_string_match(_NEGATED[base], actual, v) for v in values)
    # Several values for one key are ORed.
    return any(_string_match(base, actual, v) for v in values)


def conditions_hold(condition: dict[str, Any], context: RequestConditions) -> bool:
    """Every operator block and every key in it must hold (AND); values of a key are ORed."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            try:
                if not _operator_holds(operator, key, expected, context):
                    return False
            except (KeyError, ValueError):
                # An operator or value this layer does not evaluate: keep moto's answer for the
                # statement (it applies), so a Deny this layer cannot read still refuses.
                continue
    return True


def _already_in_moto() -> bool:
    # moto evaluates a TLS-only Deny without the request: it already behaves as AWS does when
    # that check is no longer DENIED for a request it cannot know to be plain HTTP.
    policy = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    return IAMPolicy(json.dumps(policy)).is_action_permitted("s3:GetObject", "arn:aws:s3:::b/k") != PermissionResult.DENIED


def _install() -> None:
    original_statement_check = IAMPolicyStatement.is_action_permitted
    original_get_permission = FakeBucket.get_permission

    def is_action_permitted(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: Any = None,
    ) -> PermissionResult:
        if not isinstance(incoming_condition_values, RequestConditions):
            return original_statement_check(self, action, resource, principal, incoming_condition_values)
        condition = self._statement.get("Condition")
        if condition and not conditions_hold(condition, incoming_condition_values):
            # A statement whose condition does not hold does not apply, Allow or Deny.
            return PermissionResult.NEUTRAL
        unconditional = IAMPolicyStatement({k: v for k, v in self._statement.items() if k != "Condition"})
        return original_statement_check(unconditional, action, resource, principal, None)

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        environ = request.current()
        if self.policy is None or environ is None:
            return original_get_permission(self, action, resource)
        policy = IAMPolicy(self.policy.decode())
        return policy.is_action_permitted(
            _ACTION_OF_METHOD.get(action, action), resource, incoming_condition_values=condition_context(environ)
        )

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


EXTENSION = Extension("s3-bucket-policy-conditions", DOC, _already_in_moto, _install)
