"""`invoke-audit remediate` and `invoke-audit restore` against moto and the policy emulator."""

from __future__ import annotations

import argparse
import json

import pytest

from cli.remediation import register
from lambdas.adapters.backup import BackupMacVerifier, BackupStore
from lambdas.adapters.errors import PreconditionFailedError
from lambdas.adapters.lambda_policy import LambdaPolicies
from lambdas.remediation.restore import Restorer
from models.exceptions import InputError
from tests.support.allowlists import ALLOWLIST_YAML
from tests.support.aws import (
    World,
    aws,
    client,
    create_function,
    get_policy,
    hmac_key,
    put_policy,
)
from tests.support.policies import blog_policy
from tests.support.records import REGION

pytestmark = pytest.mark.functional


class CliWorld(World):
    def __init__(self, config: str) -> None:
        super().__init__()
        self.config = config
        self.mac_key = hmac_key(self.client("kms"))


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("BACKUP_BUCKET", "BACKUP_MAC_KEY", "RATE_TABLE", "TOPIC_ARN", "OWN_FUNCTION_ARNS"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "allowlist.yaml"
    config.write_text(ALLOWLIST_YAML)
    with aws():
        yield CliWorld(str(config))


def cli(capsys, *argv):
    parser = argparse.ArgumentParser(prog="invoke-audit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def remediate(world, capsys, arn, *extra):
    return cli(
        capsys, "remediate", "--config", world.config, "--function", arn,
        "--backup-bucket", world.bucket, "--rate-table", world.table,
        "--mac-key", world.mac_key, *extra,
    )  # fmt: skip


def restore(world, capsys, backup, *extra):
    """`invoke-audit restore` as a script runs it: the deployment's settings, --yes."""
    return cli(
        capsys, "restore", backup, "--config", world.config, "--backup-bucket", world.bucket,
        "--mac-key", world.mac_key, "--yes", *extra,
    )  # fmt: skip


def blog_function():
    arn = create_function("BlogFunction")
    put_policy(arn, blog_policy(arn))
    return arn


def test_remediate_dry_run_shows_the_plan_and_changes_nothing(world, capsys):
    arn = blog_function()
    code, result, err = cli(
        capsys, "remediate", "--config", world.config, "--function", arn, "--dry-run"
    )
    assert code == 0
    assert result["outcome"] == "would-remediate"
    assert [s["Sid"] for s in result["policy_after"]["Statement"]] == ["s3-trigger"]
    assert "would-remediate" in err
    assert get_policy(arn)[0] == blog_policy(arn)
    assert world.backups() == []


def test_remediate_then_restore_from_s3_round_trips(world, capsys):
    arn = blog_function()
    code, result, _ = remediate(world, capsys, arn)
    assert code == 0
    assert result["outcome"] == "remediated"
    assert [s["Sid"] for s in get_policy(arn)[0]["Statement"]] == ["s3-trigger"]

    code, restored, err = restore(world, capsys, result["backup"], "--force")
    assert code == 0
    assert restored["outcome"] == "restored"
    assert get_policy(arn)[0] == blog_policy(arn)
    # The policy restore replaced was backed up first, in the same bucket.
    assert restored["safety_backup"].startswith(f"s3://{world.bucket}/backups/")
    assert len(world.backups()) == 2
    assert "current policy saved to" in err

    code, again, _ = restore(world, capsys, result["backup"])
    assert code == 0
    assert again["outcome"] == "already-in-place"
    assert len(world.backups()) == 2


def test_restore_refuses_to_undo_a_later_change_unless_forced(world, capsys):
    arn = blog_function()
    _, result, _ = remediate(world, capsys, arn)
    later = get_policy(arn)[0]
    later["Statement"].append(
        {
            "Sid": "added-later",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": arn,
        }
    )
    put_policy(arn, later)
    with pytest.raises(InputError, match="changed since the remediation"):
        restore(world, capsys, result["backup"])
    assert get_policy(arn)[0] == later
    code, forced, _ = restore(world, capsys, result["backup"], "--force")
    assert code == 0
    assert forced["outcome"] == "restored"
    assert get_policy(arn)[0] == blog_policy(arn)


def test_restore_of_a_null_policy_deletes_it_from_a_local_backup(world, capsys, tmp_path):
    arn = create_function("StrictFunction")
    _, result, _ = remediate(world, capsys, arn)
    assert get_policy(arn)[0] is not None
    local = tmp_path / "backup.json"
    key = result["backup"].split(f"s3://{world.bucket}/", 1)[1]
    local.write_text(json.dumps(world.backup(key)))

    code, dry, _ = restore(world, capsys, str(local), "--dry-run", "--allow-foreign-backup")
    assert code == 0
    assert dry["outcome"] == "would-restore"
    assert dry["needs_force"] == []
    assert get_policy(arn)[0] is not None

    code, restored, _ = restore(world, capsys, str(local), "--allow-foreign-backup")
    assert code == 0
    assert restored["outcome"] == "restored"
    assert get_policy(arn) == (None, None)
    # The safety copy goes to the deployment's bucket, not next to the file.
    assert restored["safety_backup"].startswith(f"s3://{world.bucket}/backups/")
    assert list(tmp_path.glob("*.before-restore-*")) == []
    safety = world.backup(restored["safety_backup"].split(f"s3://{world.bucket}/", 1)[1])
    assert safety["policy"] == result["policy_after"]
    assert safety["new_policy"] is None


def test_remediate_without_a_bucket_refuses_to_write(world, capsys):
    arn = blog_function()
    with pytest.raises(InputError, match="never changed without a backup"):
        cli(capsys, "remediate", "--config", world.config, "--function", arn)
    assert get_policy(arn)[0] == blog_policy(arn)


def test_remediate_a_protected_function_exits_1(world, capsys):
    arn = create_function("ProtectedFunction")
    code, result, _ = remediate(world, capsys, arn)
    assert code == 1
    assert result["outcome"] == "refused"


def test_remediate_needs_a_full_arn(world, capsys):
    with pytest.raises(InputError, match="names no region"):
        cli(capsys, "remediate", "--config", world.config, "--function", "BlogFunction")


@pytest.mark.parametrize(
    ("content", "problem"),
    [("[1]", "a backup is a JSON object"), ('{"policy": null}', "field function")],
)
def test_restore_names_what_is_wrong_with_a_backup(world, capsys, tmp_path, content, problem):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=problem):
        restore(world, capsys, str(bad), "--allow-foreign-backup")


def test_restore_is_compare_and_swap(world, capsys):
    arn = blog_function()
    _, result, _ = remediate(world, capsys, arn)
    key = result["backup"].split(f"s3://{world.bucket}/", 1)[1]
    store = LambdaPolicies(client("lambda"))

    class Racing:
        def read(self, ref):
            return store.read(ref)

        def write(self, ref, current, target):
            # Someone writes between our read and our write.
            put_policy(ref.arn, get_policy(ref.arn)[0])
            return store.write(ref, current, target)

    restorer = Restorer(
        policies_for=lambda ref: Racing(),
        backup_bucket=world.bucket,
        writer=lambda bucket: BackupStore(client("s3"), bucket),
        verifier=BackupMacVerifier(client("kms"), world.mac_key),
    )
    with pytest.raises(PreconditionFailedError):
        restorer.restore(world.backup(key), source=result["backup"], force=True)
    assert [s["Sid"] for s in get_policy(arn)[0]["Statement"]] == ["s3-trigger"]
