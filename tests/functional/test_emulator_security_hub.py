"""The emulator's Security Hub (emulator.security_hub), pinned to what AWS documents: the
workflow a provider's import cannot change, the two resets to NEW, BatchUpdateFindings and
its FindingNotFound, GetFindings' string filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.aws import aws, client
from tests.support.records import ACCOUNT, REGION

pytestmark = pytest.mark.functional

PRODUCT = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"


def finding(finding_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": PRODUCT,
        "GeneratorId": "gen-a",
        "AwsAccountId": ACCOUNT,
        "CreatedAt": "2026-12-01T00:00:00.000Z",
        "UpdatedAt": "2026-12-01T00:00:00.000Z",
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "AwsLambdaFunction", "Id": "arn:aws:lambda:x"}],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
        "Compliance": {"Status": "FAILED"},
        **fields,
    }


@pytest.fixture
def hub():
    with aws():
        yield client("securityhub")


def stored(hub: Any, finding_id: str) -> dict[str, Any]:
    (found,) = [f for f in hub.get_findings()["Findings"] if f["Id"] == finding_id]
    return found


def test_an_import_keeps_the_workflow_of_an_existing_finding(hub):
    hub.batch_import_findings(Findings=[finding("f")])
    answer = hub.batch_update_findings(
        FindingIdentifiers=[{"Id": "f", "ProductArn": PRODUCT}], Workflow={"Status": "NOTIFIED"}
    )
    assert answer["ProcessedFindings"] == [{"Id": "f", "ProductArn": PRODUCT}]
    hub.batch_import_findings(Findings=[finding("f", Workflow={"Status": "NEW"}, Title="t2")])
    assert stored(hub, "f")["Workflow"] == {"Status": "NOTIFIED"}
    assert stored(hub, "f")["Title"] == "t2"


def test_compliance_back_to_failed_and_unarchiving_reset_the_workflow_to_new(hub):
    hub.batch_import_findings(Findings=[finding("f", Compliance={"Status": "PASSED"})])
    hub.batch_update_findings(
        FindingIdentifiers=[{"Id": "f", "ProductArn": PRODUCT}], Workflow={"Status": "RESOLVED"}
    )
    hub.batch_import_findings(Findings=[finding("f", Compliance={"Status": "PASSED"})])
    assert stored(hub, "f")["Workflow"] == {"Status": "RESOLVED"}
    hub.batch_import_findings(Findings=[finding("f", Compliance={"Status": "FAILED"})])
    assert stored(hub, "f")["Workflow"] == {"Status": "NEW"}

    hub.batch_update_findings(
        FindingIdentifiers=[{"Id": "f", "ProductArn": PRODUCT}], Workflow={"Status": "RESOLVED"}
    )
    hub.batch_import_findings(Findings=[finding("f", RecordState="ARCHIVED")])
    assert stored(hub, "f")["Workflow"] == {"Status": "RESOLVED"}
    hub.batch_import_findings(Findings=[finding("f", RecordState="ACTIVE")])
    assert stored(hub, "f")["Workflow"] == {"Status": "NEW"}


def test_batch_update_of_an_unknown_finding_is_unprocessed(hub):
    answer = hub.batch_update_findings(
        FindingIdentifiers=[{"Id": "missing", "ProductArn": PRODUCT}],
        Workflow={"Status": "RESOLVED"},
    )
    assert answer["ProcessedFindings"] == []
    assert answer["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound"


def test_get_findings_applies_the_string_filters(hub):
    hub.batch_import_findings(
        Findings=[
            finding("a"),
            finding("b", GeneratorId="gen-b"),
            finding("c", RecordState="ARCHIVED"),
        ]
    )

    def ids(**filters: Any) -> list[str]:
        return sorted(f["Id"] for f in hub.get_findings(Filters=filters)["Findings"])

    assert ids(GeneratorId=[{"Value": "gen-a", "Comparison": "EQUALS"}]) == ["a", "c"]
    assert ids(
        GeneratorId=[{"Value": "gen-a", "Comparison": "EQUALS"}],
        RecordState=[{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    ) == ["a"]
    assert ids(GeneratorId=[{"Value": "gen-", "Comparison": "PREFIX"}]) == ["a", "b", "c"]
    assert ids(RecordState=[{"Value": "ACTIVE", "Comparison": "NOT_EQUALS"}]) == ["c"]
    with pytest.raises(hub.exceptions.InvalidInputException, match="Title"):
        hub.get_findings(Filters={"Title": [{"Value": "t", "Comparison": "EQUALS"}]})
