"""What a running local stack is: its ports, processes and keys, its state file and its clients."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
READY_TIMEOUT_SECONDS = 60.0

STACK_FILE = "stack.json"
DYNAMODB_LOG = "dynamodb.log"
S3_LOG = "seaweedfs.log"
DYNAMODB_DATA_DIR = "dynamodb-data"
S3_DATA_DIR = "seaweedfs-data"
S3_CONFIG_FILE = "s3-identities.json"


class LocalStackError(RuntimeError):
    """The local stack could not be installed, started or stopped."""


@dataclass
class LocalStack:
    state_dir: Path
    dynamodb_port: int
    s3_port: int
    dynamodb_pid: int
    s3_pid: int
    access_key: str
    secret_key: str
    region: str
    persistent: bool = False
    weed_ports: dict[str, int] = field(default_factory=dict)
    cache_dir: str | None = None

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://{HOST}:{self.dynamodb_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 clients (boto3 >= 1.28 reads the endpoint variables itself)."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str, **kwargs):
        """A boto3 client for ``dynamodb`` or ``s3`` of this stack (path-style S3)."""
        return client_for(self.env, service, **kwargs)

    def to_json(self) -> dict:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> LocalStack:
        values = dict(data)
        values["state_dir"] = Path(values["state_dir"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def client_for(env: Mapping[str, str], service: str, **kwargs):
    import boto3
    from botocore.config import Config

    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    config = kwargs.pop("config", None)
    if config is None:
        config = Config(s3={"addressing_style": "path"}) if service == "s3" else Config()
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=None,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        config=config,
        **kwargs,
    )


def save(stack: LocalStack) -> None:
    path = stack.state_dir / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(stack.to_json(), handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def load(state_dir: Path) -> LocalStack:
    """The stack described by ``state_dir/stack.json``."""
    path = Path(state_dir) / STACK_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LocalStackError(f"no local stack in {state_dir} ({path} missing)") from None
    stack = LocalStack.from_json(data)
    stack.state_dir = Path(state_dir).resolve()
    return stack
