"""The Lambda policy extension of moto, pinned to AWS's documented behaviour.

Every test runs through boto3 twice: in-process (``emulated_aws``) and against moto's server
on 127.0.0.1 (``running_server``). AWS references: the Lambda API reference pages of
GetPolicy, AddPermission, RemovePermission, GetResourcePolicy, PutResourcePolicy and
DeleteResourcePolicy, and "Using resource-based policies" (each function, version and alias
has its own policy; $LATEST has none of its own).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.awslambda import urls as lambda_urls

from emulator import (
    POLICY_SIZE_LIMIT,
    create_function,
    emulated_aws,
    install,
    is_installed,
    public_policies_blocked,
    reset_server,
)

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
NAME = "orders"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAME}"
BUCKET_ARN = "arn:aws:s3:::example-bucket"


@dataclass
class Orders:
    """The function `orders` with version 1 and alias `prod` -> 1, and a Lambda client to reach it."""

    client: Any
    endpoint_url: str | None  # None: in-process

    def new_clients(self) -> tuple[Any, Any]:
        """Fresh (lambda, iam) clients to the same emulator."""
        return _clients(self.endpoint_url)

    def add(self, sid: str, qualifier: str | None = None, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "FunctionName": NAME,
            "StatementId": sid,
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            **extra,
        }
        if qualifier:
            args["Qualifier"] = qualifier
        statement: dict[str, Any] = json.loads(self.client.add_permission(**args)["Statement"])
        return statement

    def policy(self, qualifier: str | None = None) -> tuple[dict[str, Any], str]:
        args = {"FunctionName": NAME, **({"Qualifier": qualifier} if qualifier else {})}
        response = self.client.get_policy(**args)
        return json.loads(response["Policy"]), response["RevisionId"]

    def resource_policy(self, arn: str = ARN) -> tuple[dict[str, Any], str]:
        response = self.client.get_resource_policy(ResourceArn=arn)
        return json.loads(response["Policy"]), response["RevisionId"]

    def put(self, document: dict[str, Any], arn: str = ARN, **extra: Any) -> str:
        response = self.client.put_resource_policy(
            ResourceArn=arn, Policy=json.dumps(document), **extra
        )
        revision: str = response["RevisionId"]
        return revision


# One session for the module: it loads botocore's service models once. Its credentials
# come from the environment that _fake_credentials sets before the first client is made.
_SESSION = boto3.session.Session(region_name=REGION)


def _clients(endpoint_url: str | None) -> tuple[Any, Any]:
    config = Config(retries={"max_attempts": 1})
    lam = _SESSION.client("lambda", endpoint_url=endpoint_url, config=config)
    iam = _SESSION.client("iam", endpoint_url=endpoint_url, config=config)
    return lam, iam


def _seed(lam: Any, iam: Any) -> None:
    assert create_function(lam, iam, NAME) == ARN
    assert lam.publish_version(FunctionName=NAME)["Version"] == "1"
    lam.create_alias(FunctionName=NAME, Name="prod", FunctionVersion="1")


@pytest.fixture(autouse=True)
def _fake_credentials(fake_credentials: None) -> None:
    """Every test here runs on moto's fake credentials (tests/conftest.py)."""


@pytest.fixture(params=["in-process", "server"])
def orders(request: pytest.FixtureRequest) -> Iterator[Orders]:
    if request.param == "in-process":
        with emulated_aws():
            lam, iam = _clients(None)
            _seed(lam, iam)
            yield Orders(lam, None)
    else:
        endpoint: str = request.getfixturevalue("server_endpoint")
        reset_server(endpoint)
        lam, iam = _clients(endpoint)
        _seed(lam, iam)
        yield Orders(lam, endpoint)


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(sid: str, principal: Any, resource: str = ARN) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
    }


def _deny_outside_org(sid: str = "DenyOutsideOrg") -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": ARN,
        "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-exampleorg"}},
    }


# --- per-qualifier isolation --------------------------------------------------------------


def test_function_version_and_alias_each_have_their_own_policy(orders: Orders) -> None:
    orders.add("on-function")
    orders.add("on-version", "1")
    orders.add("on-alias", "prod")

    for qualifier, sid, resource in [
        (None, "on-function", ARN),
        ("1", "on-version", f"{ARN}:1"),
        ("prod", "on-alias", f"{ARN}:prod"),
    ]:
        document, _ = orders.policy(qualifier)
        assert [s["Sid"] for s in document["Statement"]] == [sid]
        assert document["Statement"][0]["Resource"] == resource
        assert orders.resource_policy(resource)[0] == document


def test_alias_policy_is_not_the_policy_of_the_version_it_points_to(orders: Orders) -> None:
    orders.add("on-alias", "prod")

    with pytest.raises(ClientError) as excinfo:
        orders.policy("1")
    assert _error(excinfo) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:
        orders.policy()
    assert _error(excinfo) == ("ResourceNotFoundException", 404)


def test_latest_reads_the_unqualified_policy(orders: Orders) -> None:
    orders.add("on-function")
    expected = orders.policy()

    assert orders.policy("$LATEST") == expected
    assert orders.resource_policy(f"{ARN}:$LATEST") == expected


def test_latest_has_no_policy_of_its_own_to_write(orders: Orders) -> None:
    with pytest.raises(ClientError) as excinfo:
        orders.add("on-latest", "$LATEST")
    assert _error(excinfo) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as excinfo:
        orders.put(_document(_allow("a", {"Service": "s3.amazonaws.com"})), arn=f"{ARN}:$LATEST")
    assert _error(excinfo) == ("InvalidParameterValueException", 400)


def test_qualifier_in_the_function_name_or_arn_selects_the_same_policy(orders: Orders) -> None:
    orders.client.add_permission(
        FunctionName=f"{NAME}:prod",
        StatementId="by-name",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
    )
    by_parameter = orders.policy("prod")

    by_arn = orders.client.get_policy(FunctionName=f"{ARN}:prod")
    assert (json.loads(by_arn["Policy"]), by_arn["RevisionId"]) == by_parameter
    with pytest.raises(ClientError) as excinfo:
        orders.client.get_policy(FunctionName=f"{NAME}:prod", Qualifier="1")
    assert _error(excinfo) == ("InvalidParameterValueException", 400)


# --- RevisionId ---------------------------------------------------------------------------


def test_every_write_changes_the_revision_and_reads_return_it(orders: Orders) -> None:
    revisions = []
    orders.add("first")
    revisions.append(orders.policy()[1])
    orders.add("second")
    revisions.append(orders.policy()[1])
    orders.client.remove_permission(FunctionName=NAME, StatementId="first")
    revisions.append(orders.resource_policy()[1])
    revisions.append(orders.put(_document(_deny_outside_org())))
    assert orders.policy()[1] == orders.resource_policy()[1] == revisions[-1]

    orders.client.delete_resource_policy(ResourceArn=ARN, RevisionId=revisions[-1])
    orders.add("third")
    revisions.append(orders.policy()[1])

    assert len(set(revisions)) == len(revisions) == 5


def test_revisions_belong_to_one_policy(orders: Orders) -> None:
    orders.add("on-function")
    orders.add("on-alias", "prod")
    function_revision = orders.policy()[1]

    orders.add("on-alias-2", "prod")
    orders.put(_document(_deny_outside_org()), arn=f"{ARN}:1")

    assert orders.policy()[1] == function_revision
    assert orders.policy("prod")[1] != function_revision


def _add_with(orders: Orders, revision: str) -> None:
    orders.add("added", RevisionId=revision)


def _remove_with(orders: Orders, revision: str) -> None:
    orders.client.remove_permission(FunctionName=NAME, StatementId="base", RevisionId=revision)


def _put_with(orders: Orders, revision: str) -> None:
    orders.put(_document(_deny_outside_org()), RevisionId=revision)


def _delete_with(orders: Orders, revision: str) -> None:
    orders.client.delete_resource_policy(ResourceArn=ARN, RevisionId=revision)


WRITES = {
    "AddPermission": _add_with,
    "RemovePermission": _remove_with,
    "PutResourcePolicy": _put_with,
    "DeleteResourcePolicy": _delete_with,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_stale_revision_is_refused_with_412(
    orders: Orders, write: Callable[[Orders, str], None]
) -> None:
    orders.add("base")
    stale = orders.policy()[1]
    orders.add("moved-on")
    current = orders.policy()

    with pytest.raises(ClientError) as excinfo:
        write(orders, stale)

    assert _error(excinfo) == ("PreconditionFailedException", 412)
    assert orders.policy() == current


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_current_revision_is_accepted(orders: Orders, write: Callable[[Orders, str], None]) -> None:
    orders.add("base")
    orders.add("other")
    current_document, current = orders.policy()

    write(orders, current)

    if write is _delete_with:
        with pytest.raises(ClientError) as excinfo:
            orders.policy()
        assert _error(excinfo) == ("ResourceNotFoundException", 404)
    else:
        document, revision = orders.policy()
        assert revision != current
        assert document != current_document


def test_remove_permission_with_the_current_revision_removes_only_that_statement(
    orders: Orders,
) -> None:
    orders.add("keep", "prod")
    orders.add("drop", "prod")
    revision = orders.policy("prod")[1]

    orders.client.remove_permission(
        FunctionName=NAME, StatementId="drop", Qualifier="prod", RevisionId=revision
    )

    assert [s["Sid"] for s in orders.policy("prod")[0]["Statement"]] == ["keep"]


def test_revision_given_for_a_resource_without_policy_is_refused(orders: Orders) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ClientError) as excinfo:
        orders.add("first", RevisionId=unknown)
    assert _error(excinfo) == ("PreconditionFailedException", 412)
    with pytest.raises(ClientError) as excinfo:
        orders.put(_document(_deny_outside_org()), RevisionId=unknown)
    assert _error(excinfo) == ("PreconditionFailedException", 412)


def test_concurrent_compare_and_swap_lets_exactly_one_writer_win(orders: Orders) -> None:
    orders.add("base")
    revision = orders.policy()[1]
    outcomes: list[str] = []
    clients = [orders.new_clients()[0] for _ in range(8)]
    barrier = threading.Barrier(len(clients))

    def write(index: int) -> None:
        barrier.wait()
        try:
            clients[index].put_resource_policy(
                ResourceArn=ARN,
                Policy=json.dumps(_document(_deny_outside_org(f"Writer{index}"))),
                RevisionId=revision,
            )
            outcomes.append("won")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["PreconditionFailedException"] * 7 + ["won"]


# --- conflicts and not-found --------------------------------------------------------------


def test_duplicate_statement_id_is_a_409_conflict(orders: Orders) -> None:
    orders.add("same")
    before = orders.policy()

    with pytest.raises(ClientError) as excinfo:
        orders.add("same")

    assert _error(excinfo) == ("ResourceConflictException", 409)
    assert orders.policy() == before
    orders.add("same", "prod")  # another resource, another policy
    orders.put(_document(_deny_outside_org("from-put")))
    with pytest.raises(ClientError) as excinfo:
        orders.add("from-put")
    assert _error(excinfo) == ("ResourceConflictException", 409)


NOT_FOUND: dict[str, Callable[[Orders], Any]] = {
    "unknown function": lambda w: w.client.get_policy(FunctionName="missing"),
    "unknown alias": lambda w: w.client.get_policy(FunctionName=NAME, Qualifier="staging"),
    "unknown version": lambda w: w.client.get_policy(FunctionName=NAME, Qualifier="7"),
    "GetPolicy without policy": lambda w: w.client.get_policy(FunctionName=NAME),
    "GetResourcePolicy without policy": lambda w: w.client.get_resource_policy(ResourceArn=ARN),
    "GetResourcePolicy unknown alias": lambda w: w.client.get_resource_policy(
        ResourceArn=f"{ARN}:staging"
    ),
    "PutResourcePolicy unknown function": lambda w: w.put(
        _document(_deny_outside_org()), arn=ARN.replace(NAME, "missing")
    ),
    "PutResourcePolicy unknown version": lambda w: w.put(
        _document(_deny_outside_org()), arn=f"{ARN}:9"
    ),
    "AddPermission unknown alias": lambda w: w.add("x", "staging"),
    "RemovePermission without policy": lambda w: w.client.remove_permission(
        FunctionName=NAME, StatementId="x"
    ),
    "DeleteResourcePolicy without policy": lambda w: w.client.delete_resource_policy(
        ResourceArn=ARN
    ),
    "other account": lambda w: w.client.get_resource_policy(
        ResourceArn=ARN.replace(ACCOUNT, "210987654321")
    ),
}


@pytest.mark.parametrize("call", NOT_FOUND.values(), ids=NOT_FOUND.keys())
def test_missing_resources_and_policies_are_404(
    orders: Orders, call: Callable[[Orders], Any]
) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(orders)
    assert _error(excinfo) == ("ResourceNotFoundException", 404)


def test_removing_an_unknown_statement_is_404_and_changes_nothing(orders: Orders) -> None:
    orders.add("known")
    before = orders.policy()

    with pytest.raises(ClientError) as excinfo:
        orders.client.remove_permission(FunctionName=NAME, StatementId="unknown")

    assert _error(excinfo) == ("ResourceNotFoundException", 404)
    assert orders.policy() == before


def test_removing_the_last_statement_deletes_the_policy(orders: Orders) -> None:
    orders.add("only", "1")
    orders.client.remove_permission(FunctionName=NAME, StatementId="only", Qualifier="1")

    with pytest.raises(ClientError) as excinfo:
        orders.resource_policy(f"{ARN}:1")
    assert _error(excinfo) == ("ResourceNotFoundException", 404)


def test_statement_ids_with_dots_can_be_removed(orders: Orders) -> None:
    orders.add("invoke-audit.v1")
    orders.add("other")
    orders.client.remove_permission(FunctionName=NAME, StatementId="invoke-audit.v1")
    assert [s["Sid"] for s in orders.policy()[0]["Statement"]] == ["other"]


def test_deleted_alias_and_function_take_their_policies_with_them(orders: Orders) -> None:
    orders.add("on-alias", "prod")
    orders.client.delete_alias(FunctionName=NAME, Name="prod")
    orders.client.create_alias(FunctionName=NAME, Name="prod", FunctionVersion="1")
    with pytest.raises(ClientError) as excinfo:
        orders.policy("prod")
    assert _error(excinfo) == ("ResourceNotFoundException", 404)

    orders.add("on-function")
    orders.client.delete_function(FunctionName=NAME)
    create_function(*orders.new_clients(), NAME)
    with pytest.raises(ClientError) as excinfo:
        orders.policy()
    assert _error(excinfo) == ("ResourceNotFoundException", 404)


# --- the full-document API ----------------------------------------------------------------


def test_deny_statements_round_trip_through_both_apis(orders: Orders) -> None:
    document = _document(
        _allow("AllowBucket", {"Service": "s3.amazonaws.com"}, f"{ARN}:prod")
        | {"Condition": {"ArnLike": {"AWS:SourceArn": BUCKET_ARN}}},
        _deny_outside_org(),
        {
            "Sid": "DenyNotFromVpc",
            "Effect": "Deny",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/deployer"},
            "Action": ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"],
            "Resource": f"{ARN}:prod",
            "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-1a2b3c4d"}},
        },
    )
    revision = orders.put(document, arn=f"{ARN}:prod")

    assert orders.resource_policy(f"{ARN}:prod") == (document, revision)
    assert orders.policy("prod") == (document, revision)


def test_put_replaces_what_add_permission_wrote_and_add_permission_appends_to_it(
    orders: Orders,
) -> None:
    orders.add("old-grant")
    orders.put(_document(_deny_outside_org()))
    assert [s["Sid"] for s in orders.policy()[0]["Statement"]] == ["DenyOutsideOrg"]

    statement = orders.add("new-grant", SourceArn=BUCKET_ARN)

    document, revision = orders.resource_policy()
    assert [s["Sid"] for s in document["Statement"]] == ["DenyOutsideOrg", "new-grant"]
    assert document["Statement"][1] == statement
    assert orders.policy()[1] == revision


def test_add_permission_writes_the_statement_aws_writes(orders: Orders) -> None:
    by_account = orders.client.add_permission(
        FunctionName=NAME,
        StatementId="account",
        Action="lambda:InvokeFunction",
        Principal="111122223333",
        Qualifier="prod",
    )
    by_service = orders.add("service", "prod", SourceArn=BUCKET_ARN, SourceAccount=ACCOUNT)
    by_org = orders.client.add_permission(
        FunctionName=NAME,
        StatementId="org",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        PrincipalOrgID="o-exampleorg",
        FunctionUrlAuthType="AWS_IAM",
        Qualifier="prod",
    )

    assert json.loads(by_account["Statement"]) == {
        "Sid": "account",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "lambda:InvokeFunction",
        "Resource": f"{ARN}:prod",
    }
    assert by_service["Principal"] == {"Service": "s3.amazonaws.com"}
    assert by_service["Condition"] == {
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
    }
    assert json.loads(by_org["Statement"])["Condition"] == {
        "StringEquals": {
            "aws:PrincipalOrgID": "o-exampleorg",
            "lambda:FunctionUrlAuthType": "AWS_IAM",
        }
    }


def _padded_document(size: int) -> str:
    """A compact policy document of exactly `size` bytes."""
    document = _document(_allow("Pad", {"Service": "s3.amazonaws.com"}) | {"Description": ""})
    base = len(json.dumps(document, separators=(",", ":")))
    document["Statement"][0]["Description"] = "x" * (size - base)
    text = json.dumps(document, separators=(",", ":"))
    assert len(text.encode()) == size
    return text


def test_policies_are_limited_to_20_kb(orders: Orders) -> None:
    orders.client.put_resource_policy(ResourceArn=ARN, Policy=_padded_document(POLICY_SIZE_LIMIT))
    at_limit = orders.resource_policy()
    assert len(json.dumps(at_limit[0], separators=(",", ":"))) == POLICY_SIZE_LIMIT

    with pytest.raises(ClientError) as excinfo:
        orders.client.put_resource_policy(
            ResourceArn=ARN, Policy=_padded_document(POLICY_SIZE_LIMIT + 1)
        )
    assert _error(excinfo) == ("PolicyLengthExceededException", 400)
    with pytest.raises(ClientError) as excinfo:
        orders.add("one-too-many")
    assert _error(excinfo) == ("PolicyLengthExceededException", 400)
    assert orders.resource_policy() == at_limit


INVALID_DOCUMENTS = {
    "not JSON": "{not json",
    "no statements": json.dumps({"Version": "2012-10-17", "Statement": []}),
    "bad effect": json.dumps(_document(_allow("a", "*") | {"Effect": "Maybe"})),
    "no principal": json.dumps(
        _document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": ARN})
    ),
    "duplicate sid": json.dumps(_document(_allow("a", "*"), _deny_outside_org("a"))),
}


@pytest.mark.parametrize("text", INVALID_DOCUMENTS.values(), ids=INVALID_DOCUMENTS.keys())
def test_malformed_documents_are_refused(orders: Orders, text: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        orders.client.put_resource_policy(ResourceArn=ARN, Policy=text)
    assert _error(excinfo) == ("InvalidParameterValueException", 400)


@pytest.mark.parametrize("resource", [NAME, f"{ACCOUNT}:function:{NAME}", f"{ARN}:*"])
def test_resource_arn_must_be_a_complete_arn_without_wildcards(
    orders: Orders, resource: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        orders.client.get_resource_policy(ResourceArn=resource)
    assert _error(excinfo) == ("ValidationException", 400)


def test_public_policies_are_refused_while_blocked(orders: Orders) -> None:
    with public_policies_blocked():
        with pytest.raises(ClientError) as excinfo:
            orders.put(_document(_allow("public", "*")))
        assert _error(excinfo) == ("PublicPolicyException", 400)
        with pytest.raises(ClientError) as excinfo:
            orders.client.add_permission(
                FunctionName=NAME,
                StatementId="public",
                Action="lambda:InvokeFunction",
                Principal="*",
            )
        assert _error(excinfo) == ("PublicPolicyException", 400)
        orders.put(
            _document(
                _allow("scoped", "*") | {"Condition": {"ArnLike": {"AWS:SourceArn": BUCKET_ARN}}}
            )
        )

    orders.put(_document(_allow("public", "*")))  # not blocked outside the block
    assert orders.policy()[0]["Statement"][0]["Sid"] == "public"


# --- activation and Docker-free invoke ----------------------------------------------------


def test_install_is_idempotent() -> None:
    install()
    routes = dict(lambda_urls.url_paths)
    install()
    assert is_installed()
    assert dict(lambda_urls.url_paths) == routes
    assert any("resource-policy" in path for path in routes)


def test_invoke_runs_without_docker(orders: Orders) -> None:
    started = time.monotonic()
    response = orders.client.invoke(FunctionName=NAME, Qualifier="prod", Payload=b'{"a": 1}')
    assert response["StatusCode"] == 200
    assert response["Payload"].read() == b'{"a": 1}'
    assert time.monotonic() - started < 10
