"""boto3 sessions and clients for invoke-audit, with a Lambda service model that knows the
resource-policy API.

The Lambda runtime bundles a boto3 that can predate `GetResourcePolicy` / `PutResourcePolicy` /
`DeleteResourcePolicy` (API 2026-07-09). Rather than ship a whole boto3 in the asset, the asset
carries the Lambda service model (`botocore_data/lambda/2015-03-31/service-2.json`, without its
documentation strings) and a session puts it first on botocore's search path only when the
installed model lacks those operations. Refresh the copy with
`python -m lambdas.adapters.sdk --refresh` after upgrading botocore.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

__all__ = [
    "BUNDLED_DATA_PATH",
    "RESOURCE_POLICY_OPERATIONS",
    "ClientFactory",
    "botocore_session",
    "lambda_model_has_resource_policy_api",
]

BUNDLED_DATA_PATH = Path(__file__).resolve().parent / "botocore_data"
RESOURCE_POLICY_OPERATIONS = frozenset(
    {"GetResourcePolicy", "PutResourcePolicy", "DeleteResourcePolicy"}
)
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    user_agent_extra="invoke-audit",
    connect_timeout=5,
    read_timeout=20,
)


def lambda_model_has_resource_policy_api(loader: Loader) -> bool:
    """Whether the Lambda model this loader finds first has the resource-policy operations."""
    model = loader.load_service_model("lambda", "service-2")
    return set(model.get("operations", {})) >= RESOURCE_POLICY_OPERATIONS


def botocore_session(loader: Loader | None = None) -> botocore.session.Session:
    """A botocore session whose Lambda model knows the resource-policy API."""
    session = botocore.session.Session()
    if loader is not None:
        session.register_component("data_loader", loader)
        return session
    default: Loader = session.get_component("data_loader")
    if not lambda_model_has_resource_policy_api(default):
        paths = [str(BUNDLED_DATA_PATH), *default.search_paths]
        session.register_component(
            "data_loader", Loader(extra_search_paths=paths, include_default_search_paths=False)
        )
    return session


class ClientFactory:
    """Builds boto3 clients once per (service, region, credentials) and keeps them for reuse."""

    def __init__(
        self,
        *,
        region: str | None = None,
        session_factory: Callable[[], botocore.session.Session] = botocore_session,
    ) -> None:
        self._core = session_factory()
        self._session = boto3.Session(botocore_session=self._core, region_name=region)
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}

    @property
    def region(self) -> str | None:
        region: str | None = self._session.region_name
        return region

    def client(
        self, service: str, *, region: str | None = None, credentials: dict[str, str] | None = None
    ) -> Any:
        """A client for `service`; `credentials` are an AssumeRole result's `Credentials`."""
        key = (service, region, credentials["AccessKeyId"] if credentials else None)
        if key not in self._clients:
            kwargs: dict[str, Any] = {"region_name": region or self._session.region_name}
            if credentials:
                kwargs |= {
                    "aws_access_key_id": credentials["AccessKeyId"],
                    "aws_secret_access_key": credentials["SecretAccessKey"],
                    "aws_session_token": credentials["SessionToken"],
                }
            self._clients[key] = self._session.client(service, config=_CLIENT_CONFIG, **kwargs)
        return self._clients[key]


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def refresh_bundled_model() -> Path:
    """Copy the installed botocore's Lambda model (without documentation) into the asset."""
    source_dir = Path(botocore.__file__).resolve().parent / "data" / "lambda" / "2015-03-31"
    gz = source_dir / "service-2.json.gz"
    raw = (
        gzip.decompress(gz.read_bytes())
        if gz.exists()
        else (source_dir / "service-2.json").read_bytes()
    )
    model = json.loads(raw)
    missing = RESOURCE_POLICY_OPERATIONS - set(model["operations"])
    if missing:
        raise SystemExit(f"installed botocore lacks {sorted(missing)}: upgrade it first")
    target = BUNDLED_DATA_PATH / "lambda" / "2015-03-31" / "service-2.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(_strip_docs(model), sort_keys=True, separators=(",", ":")) + "\n")
    return target


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--refresh", action="store_true", help="rewrite the bundled Lambda model")
    if parser.parse_args().refresh:
        print(refresh_bundled_model())


if __name__ == "__main__":
    _main()
