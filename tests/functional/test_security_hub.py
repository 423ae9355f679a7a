"""Security Hub findings against botocore's Stubber (every request checked against the
`securityhub` service model: a finding that does not fit BatchImportFindings' input shape
raises before it is sent) and the counter on moto's DynamoDB."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from cli.allowlist_file import parse_allowlist
from lambdas.adapters.errors import AwsError
from lambdas.adapters.security_hub import (
    FindingCounter,
    FindingsReader,
    SecurityHubFindings,
    WorkflowUpdater,
)
from lambdas.core.decide import Verdict, decide
from lambdas.core.findings import (
    GENERATOR_ID,
    REQUIRED_FIELDS,
    HubLocation,
    Sightings,
    archived_finding,
    resolved_finding,
    subject_from_decision,
    violation_finding,
)
from lambdas.runtime.findings import FindingsPublisher
from tests.support.aws import aws, rate_table
from tests.support.records import (
    ACCOUNT,
    FOREIGN_ACCOUNT,
    assumed_role,
    aws_account,
    aws_service,
    iam_user,
    invoke,
    root,
    s3_invoke,
)

pytestmark = pytest.mark.functional

HUB = HubLocation(account=ACCOUNT, region="us-east-1")
PRODUCT = f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
NOW = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
SEEN = Sightings(2, "2026-12-01T08:00:00.000Z", "2026-12-03T12:00:00.000Z")
# The namespaces of the ASFF Types taxonomy (Security Hub user guide).
NAMESPACES = {
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
}
ASFF_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
CONFIG = parse_allowlist(
    """
version: 1
rules:
  - name: monitored
    functions: ["reports*"]
    mode: monitor
    allow:
      - principal: "arn:aws:iam::123456789012:role/reader"
  - name: everything
    functions: ["*"]
    mode: enforce
    allow:
      - service: sns.amazonaws.com
""",
    "test.yaml",
)


def violations():
    """Violations of every caller kind, qualified and not, monitor and enforce, two partitions."""
    records = [
        invoke("orders", iam_user()),
        invoke("orders", iam_user(), qualifier="prod"),
        invoke("orders:7", assumed_role("intruder")),
        invoke("orders", aws_account(FOREIGN_ACCOUNT)),
        invoke("orders", root(account=FOREIGN_ACCOUNT)),
        invoke("orders", aws_service("events.amazonaws.com")),
        s3_invoke(),
        invoke("reports-daily", iam_user("eve")),
        invoke(
            "orders",
            iam_user(),
            region="cn-north-1",
            resource_arn=f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:orders",
        ),
        invoke(
            "orders",
            iam_user(),
            region="us-gov-west-1",
            resource_arn=f"arn:aws-us-gov:lambda:us-gov-west-1:{ACCOUNT}:function:orders",
        ),
        invoke("orders", iam_user("x" * 64)),
    ]
    found = []
    for record in records:
        decision = decide(record, CONFIG)
        assert decision.verdict is Verdict.VIOLATION, decision.reason
        found.append((decision, record))
    return found


def every_finding():
    findings = []
    for decision, record in violations():
        subject = subject_from_decision(decision, record, owner="team", ticket="SEC-9")
        made = violation_finding(subject, HUB, SEEN, NOW)
        findings.append(made)
        findings.append(
            resolved_finding(
                subject,
                HUB,
                SEEN,
                NOW,
                backup="s3://b/backups/123456789012/us-east-1/orders/@unqualified/t-e.json",
                detail="Removed: 1 grant",
            )
        )
        findings.append(
            archived_finding(made | {"Workflow": {"Status": "NOTIFIED"}}, NOW, "allowed")
        )
        huge = replace(subject, reason="r" * 10_000, caller="c" * 3000, rule="n" * 2000)
        findings.append(violation_finding(huge, HUB, SEEN, NOW))
    return findings


FINDING_SHAPE = (
    botocore.session.get_session()
    .get_service_model("securityhub")
    .operation_model("BatchImportFindings")
    .input_shape.members["Findings"]
    .member
)


def enum_violations(value, shape, path=""):
    """Values outside the service model's enums (botocore's own validation skips enums)."""
    found = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                found += enum_violations(item, shape.members[name], f"{path}{name}.")
    elif shape.type_name == "list" and isinstance(value, list):
        for n, item in enumerate(value):
            found += enum_violations(item, shape.member, f"{path}[{n}].")
    elif shape.type_name == "map" and isinstance(value, dict):
        for item in value.values():
            found += enum_violations(item, shape.value, path)
    elif shape.type_name == "string" and shape.enum and value not in shape.enum:
        found.append(f"{path.rstrip('.')}: {value!r} not in {shape.enum}")
    return found


@pytest.fixture
def securityhub():
    client = boto3.client(
        "securityhub",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_every_generated_finding_fits_batch_import_findings(securityhub):
    client, stub = securityhub
    findings = every_finding()
    assert len(findings) == 44
    stub.add_response(
        "batch_import_findings",
        {"FailedCount": 0, "SuccessCount": 44, "FailedFindings": []},
        {"Findings": findings},
    )
    result = SecurityHubFindings(client).import_findings(findings)
    assert (result.imported, result.failed, result.unlisted) == (44, [], 0)
    for finding in findings:
        missing = [name for name in REQUIRED_FIELDS if not finding.get(name)]
        assert not missing, (finding["Id"], missing)
        assert finding["Types"] and all(t.split("/")[0] in NAMESPACES for t in finding["Types"])
        for name in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
            assert ASFF_TIME.match(finding[name]), (name, finding[name])
        assert len(finding["Title"]) <= 256 and len(finding["Description"]) <= 1024
        assert len(finding["Remediation"]["Recommendation"]["Text"]) <= 512
        assert finding["Resources"][0]["Type"] == "AwsLambdaFunction"
        assert finding["Resources"][0]["Id"].startswith(
            f"arn:{finding['Resources'][0]['Partition']}:lambda:{finding['Resources'][0]['Region']}:"
        )
        assert all(isinstance(v, str) and v for v in finding["ProductFields"].values())
        assert enum_violations(finding, FINDING_SHAPE) == []


def test_the_shape_check_catches_a_finding_that_does_not_fit(securityhub):
    client, stub = securityhub
    decision, record = violations()[0]
    finding = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    answer = {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []}
    # The Stubber checks the call order before botocore validates: a response must wait.
    stub.add_response("batch_import_findings", answer)
    with pytest.raises(AwsError, match=r"(?s)ParamValidationError.*Severity\.Label"):
        SecurityHubFindings(client).import_findings([finding | {"Severity": {"Label": 5}}])
    # botocore leaves enums to the service: the model's own enum lists catch them here.
    assert enum_violations(finding | {"Severity": {"Label": "SEVERE"}}, FINDING_SHAPE) == [
        "Severity.Label: 'SEVERE' not in ['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']"
    ]
    del finding["Resources"]
    with pytest.raises(AwsError, match=r"(?s)ParamValidationError.*Resources"):
        SecurityHubFindings(client).import_findings([finding])
    SecurityHubFindings(client).import_findings(
        [bad_free := violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)]
    )  # the waiting response, taken by a finding that fits
    assert bad_free["Resources"]


def test_partitions_and_qualifiers_reach_the_resource(securityhub):
    by_resource = {f["Resources"][0]["Id"]: f["Resources"][0] for f in every_finding()}
    assert (
        by_resource[f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders:prod"]["Partition"]
        == "aws"
    )
    assert (
        by_resource[f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders:7"]["Region"]
        == "us-east-1"
    )
    assert (
        by_resource[f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:orders"]["Partition"]
        == "aws-cn"
    )
    assert (
        by_resource[f"arn:aws-us-gov:lambda:us-gov-west-1:{ACCOUNT}:function:orders"]["Region"]
        == "us-gov-west-1"
    )


def test_refused_findings_come_back_with_their_reasons_in_batches_of_100(securityhub):
    client, stub = securityhub
    decision, record = violations()[0]
    subject = subject_from_decision(decision, record)
    findings = [
        violation_finding(replace(subject, caller=f"caller-{n}"), HUB, SEEN, NOW)
        for n in range(250)
    ]
    stub.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 99,
            "FailedFindings": [
                {"Id": findings[3]["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}
            ],
        },
        {"Findings": findings[:100]},
    )
    stub.add_response(
        "batch_import_findings",
        {"FailedCount": 2, "SuccessCount": 98, "FailedFindings": []},
        {"Findings": findings[100:200]},
    )
    stub.add_response(
        "batch_import_findings",
        {"FailedCount": 0, "SuccessCount": 50, "FailedFindings": []},
        {"Findings": findings[200:]},
    )
    result = SecurityHubFindings(client).import_findings(findings)
    assert result.imported == 247
    assert result.failed == [
        {"Id": findings[3]["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}
    ]
    assert result.unlisted == 2 and result.failed_count == 3


def test_reader_pages_through_the_active_findings_of_this_generator(securityhub):
    client, stub = securityhub
    filters = {
        "ProductArn": [{"Value": PRODUCT, "Comparison": "EQUALS"}],
        "GeneratorId": [{"Value": GENERATOR_ID, "Comparison": "EQUALS"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    }
    decision, record = violations()[0]
    one = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    two = one | {"Id": "invoke-audit/invoke/other"}
    stub.add_response(
        "get_findings",
        {"Findings": [one], "NextToken": "page-2"},
        {"Filters": filters, "MaxResults": 100},
    )
    stub.add_response(
        "get_findings",
        {"Findings": [two]},
        {"Filters": filters, "MaxResults": 100, "NextToken": "page-2"},
    )
    got = list(FindingsReader(client).active(PRODUCT, GENERATOR_ID))
    assert [f["Id"] for f in got] == [one["Id"], "invoke-audit/invoke/other"]


def test_workflow_update_reports_unprocessed_findings(securityhub):
    client, stub = securityhub
    stub.add_response(
        "batch_update_findings",
        {
            "ProcessedFindings": [],
            "UnprocessedFindings": [
                {
                    "FindingIdentifier": {"Id": "f-1", "ProductArn": PRODUCT},
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "not yet",
                }
            ],
        },
        {
            "FindingIdentifiers": [{"Id": "f-1", "ProductArn": PRODUCT}],
            "Workflow": {"Status": "RESOLVED"},
        },
    )
    result = WorkflowUpdater(client).set_status(PRODUCT, ["f-1"], "RESOLVED")
    assert result.failed == [
        {"Id": "f-1", "ErrorCode": "FindingNotFound", "ErrorMessage": "not yet"}
    ]


def test_counter_counts_atomically_and_keeps_the_first_sighting():
    with aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        counter = FindingCounter(dynamodb, rate_table(dynamodb=dynamodb))
        first = counter.seen("f", NOW)
        second = counter.seen("f", NOW + timedelta(hours=1))
        assert first == Sightings(1, "2026-12-03T13:00:00.000Z", "2026-12-03T13:00:00.000Z")
        assert second == Sightings(2, "2026-12-03T13:00:00.000Z", "2026-12-03T14:00:00.000Z")
        assert counter.current("f", NOW + timedelta(hours=5)) == second
        assert counter.current("new", NOW) == Sightings(
            0, "2026-12-03T13:00:00.000Z", "2026-12-03T13:00:00.000Z"
        )
        assert counter.seen("other", NOW).count == 1


def test_publisher_reports_refusals_and_never_raises(securityhub):
    client, stub = securityhub
    decision, record = violations()[0]

    class Counter:
        def seen(self, finding_id, at):
            return SEEN

        def current(self, finding_id, at):
            return SEEN

    publisher = FindingsPublisher(
        hub=HUB,
        findings=SecurityHubFindings(client),
        counter=Counter(),
        clock=lambda: NOW,
    )
    expected = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    stub.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 0,
            "FailedFindings": [
                {"Id": expected["Id"], "ErrorCode": "AccessDeniedException", "ErrorMessage": "no"}
            ],
        },
        {"Findings": [expected]},
    )
    published = publisher.violation(decision, record)
    assert published.failed == [
        {"Id": expected["Id"], "ErrorCode": "AccessDeniedException", "ErrorMessage": "no"}
    ]
    stub.add_client_error("batch_import_findings", "InvalidAccessException", "not subscribed")
    published = publisher.violation(decision, record)
    assert published.error and "InvalidAccessException" in published.error
    assert published.failed_count == 1
