"""The Lambda policy adapters against botocore's Stubber, which checks every request and
response against the service model: the exact error shapes AWS sends and what each becomes."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from lambdas.adapters.errors import (
    AccessDeniedError,
    ApiUnavailableError,
    AwsError,
    PolicyRejectedError,
    PreconditionFailedError,
    ResourceGoneError,
    ThrottledError,
    UnreachableError,
)
from lambdas.adapters.lambda_policy import (
    LambdaPermissions,
    LambdaPolicies,
    LambdaResourcePolicy,
)
from lambdas.core.policy import permission_plan, statement_to_permissions
from lambdas.core.ports import PolicyState
from models.arns import parse_function_arn
from models.exceptions import RewriteError

pytestmark = pytest.mark.functional

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:blog"
ALIAS = f"{FUNCTION}:prod"
REV1, REV2, REV3 = (str(uuid.uuid4()) for _ in range(3))
S3_GRANT = {
    "Sid": "s3",
    "Effect": "Allow",
    "Principal": {"Service": "s3.amazonaws.com"},
    "Action": "lambda:InvokeFunction",
    "Resource": ALIAS,
}
PUBLIC = {
    "Sid": "public",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunction",
    "Resource": ALIAS,
}


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.fixture
def lam():
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def error(stubber, method, code, status, message="", **params):
    stubber.add_client_error(
        method,
        service_error_code=code,
        service_message=message,
        http_status_code=status,
        expected_params=params or None,
    )


def test_read_is_qualifier_aware_and_returns_the_revision(lam):
    client, stubber = lam
    stubber.add_response(
        "get_resource_policy",
        {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV1},
        {"ResourceArn": ALIAS},
    )
    state = LambdaResourcePolicy(client).read(parse_function_arn(ALIAS))
    assert state == PolicyState(ALIAS, doc(S3_GRANT), REV1, "resource-policy")


def test_latest_reads_the_unqualified_policy(lam):
    client, stubber = lam
    stubber.add_response(
        "get_resource_policy",
        {"Policy": json.dumps(doc()), "RevisionId": REV1},
        {"ResourceArn": FUNCTION},
    )
    state = LambdaResourcePolicy(client).read(parse_function_arn(f"{FUNCTION}:$LATEST"))
    assert state.resource_arn == FUNCTION


def test_no_policy_and_a_missing_function_are_told_apart(lam):
    client, stubber = lam
    message = f"No policy is associated with the given resource: {ALIAS}"
    error(stubber, "get_resource_policy", "ResourceNotFoundException", 404, message)
    error(
        stubber,
        "get_resource_policy",
        "ResourceNotFoundException",
        404,
        f"Function not found: {ALIAS}",
    )
    adapter = LambdaResourcePolicy(client)
    empty = adapter.read(parse_function_arn(ALIAS))
    with pytest.raises(ResourceGoneError, match="Function not found"):
        adapter.read(parse_function_arn(ALIAS))
    assert empty == PolicyState(ALIAS, None, None, "resource-policy")


def test_no_policy_on_the_permission_api_is_read_as_none(lam):
    client, stubber = lam
    message = "The resource you requested does not exist."
    error(
        stubber,
        "get_policy",
        "ResourceNotFoundException",
        404,
        message,
        FunctionName=FUNCTION,
        Qualifier="prod",
    )
    empty = LambdaPermissions(client).read(parse_function_arn(ALIAS))
    assert empty == PolicyState(ALIAS, None, None, "permission")


def test_write_sends_the_document_with_the_revision_and_uses_the_answer_as_read_back(lam):
    client, stubber = lam
    new = doc(S3_GRANT)
    stubber.add_response(
        "put_resource_policy",
        {"Policy": json.dumps(new), "RevisionId": REV2},
        {"ResourceArn": ALIAS, "Policy": ANY, "RevisionId": REV1},
    )
    state = LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), new, REV1)
    assert state.document == new
    assert state.revision_id == REV2


def test_the_stored_policy_is_what_the_answer_says_not_what_was_sent(lam):
    client, stubber = lam
    sent = doc(S3_GRANT)
    stored = {"Version": "2012-10-17", "Id": "normalized", "Statement": [S3_GRANT]}
    stubber.add_response(
        "put_resource_policy", {"Policy": json.dumps(stored), "RevisionId": REV2}, None
    )
    assert LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), sent, REV1) == (
        PolicyState(ALIAS, stored, REV2, "resource-policy")
    )


def test_an_answer_without_the_policy_counts_the_sent_one_as_stored(lam):
    client, stubber = lam
    sent = doc(S3_GRANT)
    stubber.add_response("put_resource_policy", {"RevisionId": REV2}, None)
    assert LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), sent, REV1) == (
        PolicyState(ALIAS, sent, REV2, "resource-policy")
    )


def test_write_without_a_revision_omits_it(lam):
    client, stubber = lam
    stubber.add_response(
        "put_resource_policy",
        {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV2},
        {"ResourceArn": ALIAS, "Policy": json.dumps(doc(S3_GRANT), separators=(",", ":"))},
    )
    LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), doc(S3_GRANT), None)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("PreconditionFailedException", 412, PreconditionFailedError),
        ("TooManyRequestsException", 429, ThrottledError),
        ("ResourceNotFoundException", 404, ResourceGoneError),
        ("AccessDeniedException", 403, AccessDeniedError),
        ("PolicyLengthExceededException", 400, PolicyRejectedError),
        ("PublicPolicyException", 400, PolicyRejectedError),
        ("ServiceException", 500, AwsError),
    ],
)
def test_write_errors_become_what_the_caller_acts_on(lam, code, status, expected):
    client, stubber = lam
    error(stubber, "put_resource_policy", code, status, f"{code} happened")
    with pytest.raises(expected) as raised:
        LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), doc(S3_GRANT), REV1)
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.status == status
    assert str(raised.value) == (
        f"lambda PutResourcePolicy on {ALIAS}: {code} ({status}): {code} happened"
    )


def test_a_412_after_botocores_retries_says_so(lam):
    client, stubber = lam
    stubber.add_client_error(
        "put_resource_policy",
        service_error_code="PreconditionFailedException",
        http_status_code=412,
        response_meta={"RetryAttempts": 1},
    )
    with pytest.raises(PreconditionFailedError) as raised:
        LambdaResourcePolicy(client).write(parse_function_arn(ALIAS), doc(S3_GRANT), REV1)
    assert raised.value.retry_attempts == 1


def test_no_answer_at_all_is_unreachable_not_a_crash():
    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://lambda.example")

    class Client:
        put_resource_policy = staticmethod(unreachable)

    with pytest.raises(UnreachableError, match="EndpointConnectionError") as raised:
        LambdaResourcePolicy(Client()).write(parse_function_arn(ALIAS), doc(S3_GRANT), REV1)
    assert raised.value.status == 0


def test_delete_carries_the_revision(lam):
    client, stubber = lam
    stubber.add_response("delete_resource_policy", {}, {"ResourceArn": ALIAS, "RevisionId": REV1})
    error(stubber, "delete_resource_policy", "PreconditionFailedException", 412)
    adapter = LambdaResourcePolicy(client)
    adapter.delete(parse_function_arn(ALIAS), REV1)
    with pytest.raises(PreconditionFailedError) as raised:
        adapter.delete(parse_function_arn(ALIAS), REV1)
    assert (raised.value.operation, raised.value.resource) == ("DeleteResourcePolicy", ALIAS)


@pytest.mark.parametrize(
    ("code", "message"),
    [("UnknownOperationException", ""), ("404", "Not yet implemented")],
)
def test_policies_fall_back_when_the_endpoint_does_not_know_the_operation(lam, code, message):
    client, stubber = lam
    error(stubber, "get_resource_policy", code, 404, message)
    stubber.add_response(
        "get_policy",
        {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV1},
        {"FunctionName": FUNCTION, "Qualifier": "prod"},
    )
    stubber.add_response(
        "get_policy",
        {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV1},
        {"FunctionName": FUNCTION, "Qualifier": "prod"},
    )
    policies = LambdaPolicies(client)
    first = policies.read(parse_function_arn(ALIAS))
    second = policies.read(parse_function_arn(ALIAS))
    assert first.api == second.api == "permission"
    assert first.document == doc(S3_GRANT)


def test_access_denied_on_read_is_not_a_fallback(lam):
    client, stubber = lam
    error(stubber, "get_resource_policy", "AccessDeniedException", 403, "not authorized")
    with pytest.raises(AccessDeniedError):
        LambdaPolicies(client).read(parse_function_arn(ALIAS))


def test_client_without_the_operation_is_api_unavailable():
    class OldClient:
        class meta:
            class service_model:
                api_version = "2015-03-31"

    with pytest.raises(ApiUnavailableError) as raised:
        LambdaResourcePolicy(OldClient()).read(parse_function_arn(ALIAS))
    assert str(raised.value) == (
        f"lambda GetResourcePolicy on {ALIAS}: UnknownOperation (0):"
        " this botocore (2015-03-31) has no GetResourcePolicy"
    )


@pytest.mark.parametrize(
    "message",
    [
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:blog",
        "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:blog:prod",
        "Cannot find version 7 of function blog",
    ],
)
def test_a_missing_function_alias_or_version_is_gone_on_either_api(lam, message):
    client, stubber = lam
    error(stubber, "get_resource_policy", "ResourceNotFoundException", 404, message)
    error(stubber, "get_policy", "ResourceNotFoundException", 404, message)
    with pytest.raises(ResourceGoneError):
        LambdaResourcePolicy(client).read(parse_function_arn(ALIAS))
    with pytest.raises(ResourceGoneError):
        LambdaPermissions(client).read(parse_function_arn(ALIAS))


def test_permission_write_chains_revision_ids_call_by_call(lam):
    client, stubber = lam
    tightened = S3_GRANT | {"Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"}}}
    stubber.add_response(
        "remove_permission",
        {},
        {
            "FunctionName": FUNCTION,
            "Qualifier": "prod",
            "StatementId": "public",
            "RevisionId": REV1,
        },
    )
    stubber.add_response("get_policy", {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV2})
    stubber.add_response(
        "remove_permission",
        {},
        {"FunctionName": FUNCTION, "Qualifier": "prod", "StatementId": "s3", "RevisionId": REV2},
    )
    error(
        stubber,
        "get_policy",
        "ResourceNotFoundException",
        404,
        "The resource you requested does not exist.",
    )
    stubber.add_response(
        "add_permission",
        {"Statement": json.dumps(tightened)},
        {
            "FunctionName": FUNCTION,
            "Qualifier": "prod",
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceAccount": "123456789012",
        },
    )
    stubber.add_response("get_policy", {"Policy": json.dumps(doc(tightened)), "RevisionId": REV3})
    ref = parse_function_arn(ALIAS)
    current = PolicyState(ALIAS, doc(PUBLIC, S3_GRANT), REV1, "permission")
    state = LambdaPermissions(client).write(ref, current, doc(tightened))
    assert state.revision_id == REV3
    assert state.document == doc(tightened)


def test_permission_write_stops_at_a_412(lam):
    client, stubber = lam
    error(stubber, "remove_permission", "PreconditionFailedException", 412)
    current = PolicyState(ALIAS, doc(PUBLIC, S3_GRANT), REV1, "permission")
    with pytest.raises(PreconditionFailedError):
        LambdaPermissions(client).write(parse_function_arn(ALIAS), current, doc(S3_GRANT))


def test_each_added_permission_carries_the_revision_read_after_the_one_before(lam):
    client, stubber = lam
    target = FUNCTION
    stubber.add_response(
        "add_permission",
        {"Statement": json.dumps(PUBLIC)},
        {
            "FunctionName": FUNCTION,
            "StatementId": "public",
            "Action": "lambda:InvokeFunction",
            "Principal": "*",
            "RevisionId": REV1,
        },
    )
    stubber.add_response("get_policy", {"Policy": json.dumps(doc(PUBLIC)), "RevisionId": REV2})
    stubber.add_response(
        "add_permission",
        {"Statement": json.dumps(S3_GRANT)},
        {
            "FunctionName": FUNCTION,
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "RevisionId": REV2,
        },
    )
    error(stubber, "get_policy", "ServiceException", 500, "down")
    current = PolicyState(target, {"Statement": []}, REV1, "permission")
    with pytest.raises(AwsError) as raised:
        LambdaPermissions(client).write(parse_function_arn(target), current, doc(PUBLIC, S3_GRANT))
    assert (raised.value.operation, raised.value.resource) == ("GetPolicy", FUNCTION)


@pytest.mark.parametrize(
    ("method", "operation", "target"),
    [
        ("remove_permission", "RemovePermission", doc(S3_GRANT)),
        ("add_permission", "AddPermission", doc(PUBLIC, S3_GRANT, PUBLIC | {"Sid": "p2"})),
    ],
)
def test_a_failed_permission_call_names_its_operation_and_resource(lam, method, operation, target):
    client, stubber = lam
    error(stubber, method, "PreconditionFailedException", 412)
    current = PolicyState(ALIAS, doc(PUBLIC, S3_GRANT), REV1, "permission")
    with pytest.raises(PreconditionFailedError) as raised:
        LambdaPermissions(client).write(parse_function_arn(ALIAS), current, target)
    assert (raised.value.operation, raised.value.resource) == (operation, ALIAS)


def test_a_permission_write_with_nothing_to_do_calls_nothing_and_returns_the_policy_read(lam):
    client, _ = lam
    current = PolicyState(ALIAS, doc(PUBLIC), REV1, "permission")
    assert LambdaPermissions(client).write(parse_function_arn(ALIAS), current, doc(PUBLIC)) == (
        current
    )


def test_permission_api_refuses_deny_before_calling_anything(lam):
    client, _ = lam
    deny = {"Sid": "deny", "Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction"}
    current = PolicyState(ALIAS, None, None, "permission")
    with pytest.raises(RewriteError, match="resource-policy API is needed"):
        LambdaPermissions(client).write(parse_function_arn(ALIAS), current, doc(deny))


def test_statement_to_permissions_maps_conditions_and_splits_principals():
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::111122223333:root", "444455556666"]},
        "Action": "lambda:InvokeFunction",
        "Condition": {
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"},
            "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"},
        },
    }
    permissions = statement_to_permissions(statement, "grant")
    assert [p["StatementId"] for p in permissions] == ["grant", "grant-2"]
    assert [p["Principal"] for p in permissions] == [
        "arn:aws:iam::111122223333:root",
        "444455556666",
    ]
    assert all(p["SourceArn"] == "arn:aws:s3:::bucket" for p in permissions)
    assert all(p["PrincipalOrgID"] == "o-abcdefghij" for p in permissions)


def test_statement_to_permissions_refuses_what_add_permission_cannot_say():
    statement = PUBLIC | {"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    with pytest.raises(RewriteError, match="aws:SourceIp"):
        statement_to_permissions(statement, "public")


def test_permission_plan_removes_and_re_adds_only_what_changed():
    tightened = S3_GRANT | {"Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"}}}
    removals, additions = permission_plan(doc(PUBLIC, S3_GRANT), doc(tightened))
    unchanged = permission_plan(doc(S3_GRANT), doc(S3_GRANT))
    assert removals == ["public", "s3"]
    assert [a["StatementId"] for a in additions] == ["s3"]
    assert additions[0]["SourceAccount"] == "123456789012"
    assert unchanged == ([], [])


def test_no_policy_as_the_target_deletes_the_document_with_its_revision(lam):
    client, stubber = lam
    stubber.add_response("delete_resource_policy", {}, {"ResourceArn": ALIAS, "RevisionId": REV1})
    current = PolicyState(ALIAS, doc(PUBLIC), REV1, "resource-policy")
    stored = LambdaPolicies(client).write(parse_function_arn(ALIAS), current, None)
    assert stored == PolicyState(ALIAS, None, None, "resource-policy")


def test_no_policy_over_no_policy_calls_nothing(lam):
    client, _ = lam
    current = PolicyState(ALIAS, None, None, "resource-policy")
    stored = LambdaPolicies(client).write(parse_function_arn(ALIAS), current, None)
    assert stored == PolicyState(ALIAS, None, None, "resource-policy")


def test_a_document_is_put_with_the_revision_it_was_read_with(lam):
    client, stubber = lam
    stubber.add_response(
        "put_resource_policy",
        {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV2},
        {"ResourceArn": ALIAS, "Policy": ANY, "RevisionId": REV1},
    )
    current = PolicyState(ALIAS, doc(PUBLIC, S3_GRANT), REV1, "resource-policy")
    stored = LambdaPolicies(client).write(parse_function_arn(ALIAS), current, doc(S3_GRANT))
    assert stored == PolicyState(ALIAS, doc(S3_GRANT), REV2, "resource-policy")


def test_a_policy_read_through_the_permission_api_is_written_through_it(lam):
    client, stubber = lam
    stubber.add_response(
        "remove_permission",
        {},
        {
            "FunctionName": FUNCTION,
            "Qualifier": "prod",
            "StatementId": "public",
            "RevisionId": REV1,
        },
    )
    stubber.add_response("get_policy", {"Policy": json.dumps(doc(S3_GRANT)), "RevisionId": REV2})
    current = PolicyState(ALIAS, doc(PUBLIC, S3_GRANT), REV1, "permission")
    stored = LambdaPolicies(client).write(parse_function_arn(ALIAS), current, doc(S3_GRANT))
    assert stored == PolicyState(ALIAS, doc(S3_GRANT), REV2, "permission")
