"""Parts of the rewrite read on their own (lambdas.core.rewrite): which principal value is an
account. Expected values by hand."""

from __future__ import annotations

import pytest

from lambdas.core.rewrite import _account_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "value", "account"),
    [
        ("AWS", "111122223333", ("111122223333", None)),
        ("AWS", "arn:aws:iam::111122223333:root", ("111122223333", "aws")),
        ("AWS", "arn:aws-cn:iam::111122223333:root", ("111122223333", "aws-cn")),
        ("AWS", "AIDAEXAMPLE1", None),  # twelve characters, a unique id: no account
        ("AWS", "1111222233334", None),
        ("AWS", "11112222333", None),
        ("AWS", "arn:aws:iam::111122223333:role/root", None),
        ("AWS", "arn:aws:iam::111122223333:user/x", None),
        ("AWS", "arn:aws:sts::111122223333:root", None),
        ("AWS", "arn:aws:iam::111122223333:root:extra", None),
        ("Service", "111122223333", None),
        ("AWS", "*", None),
    ],
)
def test_an_account_principal_is_twelve_digits_or_its_root(kind, value, account):
    assert _account_of(kind, value) == account
