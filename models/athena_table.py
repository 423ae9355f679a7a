"""The CloudTrail table for Amazon Athena, as AWS documents it, partitioned by account, region
and date with partition projection.

The columns, SerDe and input format are those of "Create the table for CloudTrail logs in
Athena using partition projection" (Amazon Athena User Guide,
https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table-partition-projection.html).
That page projects one partition key, `timestamp` (`yyyy/MM/dd`), for one account and region;
an organization's bucket holds `AWSLogs/[o-ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`, so here
`account` and `region` are projected too (type `enum`, the accounts and regions listed), which
lets a query that names accounts, regions or dates read only those prefixes.

The CLI prints the `CREATE TABLE` (`invoke-audit history --print-ddl`) and the CDK app creates
the same table in Glue (`stacks/athena.py`): both read the definitions below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.exceptions import InputError

__all__ = [
    "COLUMNS",
    "INPUT_FORMAT",
    "OUTPUT_FORMAT",
    "PARTITION_KEYS",
    "SERDE",
    "TrailLocation",
    "check_location",
    "create_table_ddl",
    "projection_parameters",
]

_IDENTITY = (
    "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,"
    "accesskeyid:string,username:string,onbehalfof:struct<userid:string,identitystorearn:string>,"
    "sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,"
    "sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,"
    "username:string>,ec2roledelivery:string,webidfederationdata:struct<federatedprovider:string,"
    "attributes:map<string,string>>>>"
)

# (name, Hive type) in the documented order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("eventversion", "string"),
    ("useridentity", _IDENTITY),
    ("eventtime", "string"),
    ("eventsource", "string"),
    ("eventname", "string"),
    ("awsregion", "string"),
    ("sourceipaddress", "string"),
    ("useragent", "string"),
    ("errorcode", "string"),
    ("errormessage", "string"),
    ("requestparameters", "string"),
    ("responseelements", "string"),
    ("additionaleventdata", "string"),
    ("requestid", "string"),
    ("eventid", "string"),
    ("readonly", "string"),
    ("resources", "array<struct<arn:string,accountid:string,type:string>>"),
    ("eventtype", "string"),
    ("apiversion", "string"),
    ("recipientaccountid", "string"),
    ("serviceeventdetails", "string"),
    ("sharedeventid", "string"),
    ("vpcendpointid", "string"),
    ("vpcendpointaccountid", "string"),
    ("eventcategory", "string"),
    (
        "addendum",
        "struct<reason:string,updatedfields:string,originalrequestid:string,"
        "originaleventid:string>",
    ),
    ("sessioncredentialfromconsole", "string"),
    ("edgedevicedetails", "string"),
    ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>"),
)
# `timestamp` is the documented name of the date partition (the log files' S3 date folder).
PARTITION_KEYS: tuple[tuple[str, str], ...] = (
    ("account", "string"),
    ("region", "string"),
    ("timestamp", "string"),
)
SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
INPUT_FORMAT = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_ACCOUNT = re.compile(r"\d{12}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d\Z")
_ORG = re.compile(r"o-[a-z0-9]{10,32}\Z")
_DATE = re.compile(r"\d{4}/\d{2}/\d{2}\Z")
_NAME = re.compile(r"[a-z0-9_]{1,255}\Z")


@dataclass(frozen=True, slots=True)
class TrailLocation:
    """Where a trail delivers its log files, and which accounts, regions and dates to project."""

    bucket: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    start_date: str = "2020/01/01"  # yyyy/MM/dd, the first day to project
    key_prefix: str = ""  # the trail's S3 key prefix, if it has one
    organization_id: str | None = None  # organization trails add the organization's id

    @property
    def logs_root(self) -> str:
        prefix = self.key_prefix.strip("/")
        org = f"{self.organization_id}/" if self.organization_id else ""
        return f"s3://{self.bucket}/{prefix + '/' if prefix else ''}AWSLogs/{org}"

    @property
    def location_template(self) -> str:
        return self.logs_root + "${account}/CloudTrail/${region}/${timestamp}"


def check_location(location: TrailLocation) -> None:
    """Values given on a command line: InputError naming the first bad one. (The CDK app's
    values are checked when its context is read, and may be deploy-time tokens.)"""
    if not _BUCKET.match(location.bucket):
        raise InputError(f"bucket {location.bucket!r}: not an S3 bucket name")
    if not location.accounts or not all(_ACCOUNT.match(a) for a in location.accounts):
        raise InputError(f"accounts {list(location.accounts)}: give 12-digit account ids")
    if not location.regions or not all(_REGION.match(r) for r in location.regions):
        raise InputError(f"regions {list(location.regions)}: give region names (us-east-1)")
    if not _DATE.match(location.start_date):
        raise InputError(f"start date {location.start_date!r}: expected yyyy/MM/dd")
    if location.organization_id is not None and not _ORG.match(location.organization_id):
        raise InputError(f"organization id {location.organization_id!r}: expected o-...")
    prefix = location.key_prefix
    if any(c in prefix for c in "'\\${}`") or prefix.startswith("/"):
        raise InputError(f"key prefix {prefix!r}: not an S3 key prefix")


def projection_parameters(location: TrailLocation) -> dict[str, str]:
    """The table properties that project the partitions (no partitions are ever loaded)."""
    return {
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": ",".join(location.accounts),
        "projection.region.type": "enum",
        "projection.region.values": ",".join(location.regions),
        "projection.timestamp.type": "date",
        "projection.timestamp.format": "yyyy/MM/dd",
        "projection.timestamp.interval": "1",
        "projection.timestamp.interval.unit": "DAYS",
        "projection.timestamp.range": f"{location.start_date},NOW",
        "storage.location.template": location.location_template,
    }


def create_table_ddl(database: str, table: str, location: TrailLocation) -> str:
    """The `CREATE EXTERNAL TABLE` statement (Athena DDL) for the trail's bucket."""
    check_location(location)
    for what, name in (("database", database), ("table", table)):
        if not _NAME.match(name):
            raise InputError(f"{what} {name!r}: use lowercase letters, digits and _")
    columns = ",\n".join(f"  `{name}` {kind}" for name, kind in COLUMNS)
    partitions = ",\n".join(f"  `{name}` {kind}" for name, kind in PARTITION_KEYS)
    properties = ",\n".join(f"  '{k}'='{v}'" for k, v in projection_parameters(location).items())
    return (
        f"CREATE EXTERNAL TABLE `{database}`.`{table}` (\n{columns}\n)\n"
        f"PARTITIONED BY (\n{partitions}\n)\n"
        f"ROW FORMAT SERDE '{SERDE}'\n"
        f"STORED AS INPUTFORMAT '{INPUT_FORMAT}'\n"
        f"OUTPUTFORMAT '{OUTPUT_FORMAT}'\n"
        f"LOCATION '{location.logs_root}'\n"
        f"TBLPROPERTIES (\n{properties}\n);\n"
    )
