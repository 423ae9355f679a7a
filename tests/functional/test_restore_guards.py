"""`invoke-audit restore` refuses what it must: a backup from another bucket or a file, one
stored under another function's key or not of the resource asked for, a tampered or unsigned
one, a protected or own function, a policy wider than the allowlist; it asks on a terminal
and needs --yes without one. Against moto (S3, KMS HMAC keys, STS) and the policy emulator.
"""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest

from cli.remediation import register
from lambdas.adapters import clients as client_factory
from lambdas.adapters.backup import BackupMacVerifier, BackupSigner, BackupStore
from models.exceptions import InputError
from tests.support.allowlists import ALLOWLIST_YAML
from tests.support.aws import World, aws, client, create_function, get_policy, hmac_key, put_policy
from tests.support.records import ACCOUNT, REGION

pytestmark = pytest.mark.functional

BLOG = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BlogFunction"
# Hand-written: what the blog function's policy is before the remediator sees it (anyone may
# invoke, and an S3 grant without SourceAccount) ...
ORIGINAL = {
    "Version": "2012-10-17",
    "Id": "default",
    "Statement": [
        {
            "Sid": "public",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunction",
            "Resource": BLOG,
        },
        {
            "Sid": "s3-trigger",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": BLOG,
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"}},
        },
    ],
}
# ... and a policy the blog rule allows: only its S3 bucket, in this account.
COMPLIANT = {
    "Version": "2012-10-17",
    "Id": "default",
    "Statement": [
        {
            "Sid": "s3-trigger",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": BLOG,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"},
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            },
        }
    ],
}
PREFIX = f"backups/{ACCOUNT}/{REGION}"


def public(arn: str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Sid": "p", "Resource": arn}]}


class RestoreWorld(World):
    def __init__(self, config: str) -> None:
        super().__init__()
        self.config = config
        self.mac_key = hmac_key(self.client("kms"))
        self.signed = BackupStore(
            self.client("s3"), self.bucket, signer=BackupSigner(self.client("kms"), self.mac_key)
        )

    def put_object(self, key: str, backup: dict[str, Any], bucket: str | None = None) -> str:
        bucket = bucket or self.bucket
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(backup).encode())
        return f"s3://{bucket}/{key}"


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("BACKUP_BUCKET", "BACKUP_MAC_KEY", "RATE_TABLE", "TOPIC_ARN", "OWN_FUNCTION_ARNS"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "allowlist.yaml"
    config.write_text(ALLOWLIST_YAML)
    with aws():
        yield RestoreWorld(str(config))


def run(capsys, *argv):
    parser = argparse.ArgumentParser(prog="invoke-audit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def restore(world, capsys, backup, *extra):
    return run(
        capsys, "restore", backup, "--config", world.config, "--backup-bucket", world.bucket,
        "--mac-key", world.mac_key, *extra,
    )  # fmt: skip


def remediated_blog(world, capsys):
    """BlogFunction with ORIGINAL on it, remediated: (the backup's location, its key)."""
    create_function("BlogFunction")
    put_policy(BLOG, ORIGINAL)
    code, result, _ = run(
        capsys, "remediate", "--config", world.config, "--function", BLOG,
        "--backup-bucket", world.bucket, "--mac-key", world.mac_key,
    )  # fmt: skip
    assert code == 0 and result["outcome"] == "remediated"
    uri = result["backup"]
    return uri, uri.removeprefix(f"s3://{world.bucket}/")


def test_the_remediator_signs_its_backup_over_its_whole_content(world, capsys):
    _, key = remediated_blog(world, capsys)
    backup = world.backup(key)
    assert backup["policy"] == ORIGINAL
    assert set(backup["signature"]) == {"algorithm", "key", "mac"}
    assert backup["signature"]["algorithm"] == "HMAC_SHA_256"
    verifier = BackupMacVerifier(client("kms"), world.mac_key)
    assert verifier.verify(backup)
    # Every field counts: the function, the policies, the revision, the time.
    for field, value in [
        ("function", f"{BLOG}:prod"),
        ("policy", COMPLIANT),
        ("new_policy", None),
        ("revision_id", "another"),
        ("time", "2020-01-01T00:00:00+00:00"),
    ]:
        assert not verifier.verify({**backup, field: value}), field
    # Another HMAC key's verdict on the same file: not valid.
    other = BackupMacVerifier(client("kms"), hmac_key(client("kms")))
    assert not other.verify(backup)


def test_happy_path_puts_back_the_exact_original_policy(world, capsys):
    uri, _ = remediated_blog(world, capsys)
    assert get_policy(BLOG)[0] != ORIGINAL
    # The original lets anyone invoke: a plain restore is refused and changes nothing.
    with pytest.raises(InputError, match=r"lets callers rule 'blog' does not allow invoke"):
        restore(world, capsys, uri, "--yes")
    code, dry, _ = restore(world, capsys, uri, "--dry-run")
    assert code == 0 and dry["outcome"] == "would-restore"
    assert len(dry["needs_force"]) == 1 and "anonymous" in dry["needs_force"][0]
    code, result, err = restore(world, capsys, uri, "--yes", "--force")
    assert code == 0
    assert result["outcome"] == "restored"
    assert get_policy(BLOG)[0] == ORIGINAL
    assert f"--- current policy of {BLOG}" in err and '+      "Principal": "*",' in err
    # The safety copy is in the deployment's bucket, under the function's key.
    assert result["safety_backup"].startswith(f"s3://{world.bucket}/{PREFIX}/BlogFunction/")


def test_a_compliant_signed_backup_needs_no_force(world, capsys):
    create_function("BlogFunction")
    revision = put_policy(BLOG, ORIGINAL)
    uri = world.signed.put(
        f"{PREFIX}/BlogFunction/@unqualified/2026-12-03T10:00:00.000000Z-e1.json",
        {"function": BLOG, "revision_id": revision, "policy": COMPLIANT, "time": "t"},
    )
    code, result, _ = restore(world, capsys, uri, "--yes")
    assert code == 0 and result["outcome"] == "restored"
    assert get_policy(BLOG)[0] == COMPLIANT


def test_refuses_a_backup_in_another_bucket_or_a_file(world, capsys, tmp_path):
    _, key = remediated_blog(world, capsys)
    after = get_policy(BLOG)[0]
    world.client("s3").create_bucket(Bucket="somebody-elses-bucket")
    copied = world.put_object(key, world.backup(key), bucket="somebody-elses-bucket")
    with pytest.raises(InputError, match="not in the backup bucket invoke-audit-backups"):
        restore(world, capsys, copied, "--yes", "--force")
    local = tmp_path / "backup.json"
    local.write_text(json.dumps(world.backup(key)))
    with pytest.raises(InputError, match="a local file, not the deployment's backup bucket"):
        restore(world, capsys, str(local), "--yes", "--force")
    assert get_policy(BLOG)[0] == after
    # Said on purpose: every other check still applies, the safety copy goes to our bucket.
    code, result, _ = restore(world, capsys, copied, "--yes", "--force", "--allow-foreign-backup")
    assert code == 0 and result["outcome"] == "restored"
    assert get_policy(BLOG)[0] == ORIGINAL
    assert result["safety_backup"].startswith(f"s3://{world.bucket}/")


def test_refuses_a_backup_stored_under_another_functions_key(world, capsys):
    uri, key = remediated_blog(world, capsys)
    create_function("StrictFunction")
    moved = world.put_object(key.replace("/BlogFunction/", "/StrictFunction/"), world.backup(key))
    with pytest.raises(InputError, match=f"the backup is of {BLOG}, but its key"):
        restore(world, capsys, moved, "--yes", "--force")
    qualified = world.put_object(key.replace("/@unqualified/", "/prod/"), world.backup(key))
    with pytest.raises(InputError, match="is not under"):
        restore(world, capsys, qualified, "--yes", "--force")
    # And the operator's --function must be the resource of the backup, qualifier included.
    with pytest.raises(InputError, match=f"not of {BLOG}:prod"):
        restore(world, capsys, uri, "--yes", "--force", "--function", f"{BLOG}:prod")
    code, result, _ = restore(world, capsys, uri, "--yes", "--force", "--function", BLOG)
    assert code == 0 and result["outcome"] == "restored"


def test_refuses_a_tampered_backup_even_with_force(world, capsys):
    uri, key = remediated_blog(world, capsys)
    after = get_policy(BLOG)[0]
    tampered = world.backup(key)
    tampered["policy"]["Statement"][1]["Principal"] = {"AWS": "arn:aws:iam::999999999999:root"}
    world.put_object(key, tampered)
    with pytest.raises(InputError, match="the signature does not match"):
        restore(world, capsys, uri, "--yes", "--force")
    resigned = world.backup(key)
    resigned["signature"]["mac"] = "AAAA"
    world.put_object(key, resigned)
    with pytest.raises(InputError, match="the signature does not match"):
        restore(world, capsys, uri, "--yes", "--force", "--allow-foreign-backup")
    assert get_policy(BLOG)[0] == after


def test_an_unsigned_backup_needs_force(world, capsys):
    uri, key = remediated_blog(world, capsys)
    unsigned = world.backup(key)
    del unsigned["signature"]
    world.put_object(key, unsigned)
    with pytest.raises(InputError, match="the backup is not signed"):
        restore(world, capsys, uri, "--yes")
    code, result, _ = restore(world, capsys, uri, "--yes", "--force")
    assert code == 0 and result["outcome"] == "restored"
    assert get_policy(BLOG)[0] == ORIGINAL


def test_refuses_a_protected_or_own_function(world, capsys):
    protected = create_function("ProtectedFunction")
    put_policy(protected, public(protected))
    uri = world.signed.put(
        f"{PREFIX}/ProtectedFunction/@unqualified/2026-12-03T10:00:00.000000Z-e1.json",
        {"function": protected, "policy": None, "time": "t"},
    )
    with pytest.raises(InputError, match="is protected by 'Protected\\*': never changed"):
        restore(world, capsys, uri, "--yes", "--force")
    own = create_function("Pipeline")
    put_policy(own, public(own))
    uri = world.signed.put(
        f"{PREFIX}/Pipeline/@unqualified/2026-12-03T10:00:00.000000Z-e1.json",
        {"function": own, "policy": None, "time": "t"},
    )
    with pytest.raises(InputError, match="the pipeline's own function: never changed"):
        restore(world, capsys, uri, "--yes", "--force", "--own-function", own)
    assert get_policy(own)[0] is not None
    assert get_policy(protected)[0] is not None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_needs_yes_without_a_terminal_and_asks_on_one(world, capsys, monkeypatch):
    uri, _ = remediated_blog(world, capsys)
    after = get_policy(BLOG)[0]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(InputError, match=r"stdin is not a terminal.*--yes"):
        restore(world, capsys, uri, "--force")
    assert get_policy(BLOG)[0] == after
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, result, err = restore(world, capsys, uri, "--force")
    assert (code, result["outcome"]) == (1, "not-confirmed")
    assert f"Put this policy back on {BLOG}? [y/N]" in err
    assert get_policy(BLOG)[0] == after
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, result, _ = restore(world, capsys, uri, "--force")
    assert (code, result["outcome"]) == (0, "restored")
    assert get_policy(BLOG)[0] == ORIGINAL


def test_every_s3_call_names_the_bucket_owner(world, capsys, monkeypatch):
    uri, _ = remediated_blog(world, capsys)
    seen: list[tuple[str, str | None]] = []
    made = client_factory.ClientFactory.client

    def recording(self, service, **kwargs):
        made_client = made(self, service, **kwargs)
        if service == "s3":

            def record(params, model, **_):
                seen.append((model.name, params.get("ExpectedBucketOwner")))

            made_client.meta.events.register("provide-client-params.s3", record)
        return made_client

    monkeypatch.setattr(client_factory.ClientFactory, "client", recording)
    code, _, _ = restore(world, capsys, uri, "--yes", "--force")
    assert code == 0
    assert {name for name, _ in seen} == {"GetObject", "PutObject"}
    assert {owner for _, owner in seen} == {ACCOUNT}


def test_without_a_bucket_restore_reads_the_stacks_outputs(world, capsys):
    uri, _ = remediated_blog(world, capsys)
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"
    for environment, own in (("prod", f"{BLOG},{other}"), ("test", other)):
        outputs = {
            "BackupBucketName": world.bucket,
            "BackupMacKeyArn": world.mac_key,
            "OwnFunctionArns": own,
        }
        world.client("cloudformation").create_stack(
            StackName=f"InvokeAudit-{environment}",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()},
                }
            ),
        )
    after = get_policy(BLOG)[0]
    # BlogFunction is named in the stack's OwnFunctionArns here: refused as the pipeline's own,
    # which shows the bucket, key and own functions all came from the outputs.
    with pytest.raises(InputError, match="the pipeline's own function: never changed"):
        run(
            capsys, "restore", uri, "--config", world.config, "--environment", "prod",
            "--yes", "--force",
        )  # fmt: skip
    assert get_policy(BLOG)[0] == after
    with pytest.raises(InputError, match="stack InvokeAudit-dev not found"):
        run(capsys, "restore", uri, "--config", world.config, "--yes", "--force")
    # The other stack's outputs: its bucket, and its key verifies the signature.
    code, result, _ = run(
        capsys, "restore", uri, "--config", world.config, "--stack", "InvokeAudit-test",
        "--yes", "--force",
    )  # fmt: skip
    assert (code, result["outcome"]) == (0, "restored")
    assert get_policy(BLOG)[0] == ORIGINAL
