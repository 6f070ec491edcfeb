"""The fault proxy's kept-alive mode (the benchmarks' 20 ms "remote region"): requests after
requests over one client connection, HEAD replies without a body, uploads that expect
``100 Continue``, exact bytes both ways."""

from __future__ import annotations

import os

from feaas.dao import Blobs, Documents, make_clients
from tests.conftest import BUCKET, REGION, TABLE
from tests.support.faultproxy import FaultProxy
from tests.support.scripts import NAMESPACE


def test_kept_alive_connections_carry_many_requests_exactly(stack, dao, monkeypatch):
    data = os.urandom(300_000)
    key = f"{NAMESPACE}keepalive.bin"
    dao.blobs.put_bytes(key, data)
    doc_id = f"{NAMESPACE}keepalive.1"
    dao.docs.put_new({"object_id": doc_id, "owner": NAMESPACE.rstrip("/"), "n": 7})
    with (FaultProxy(stack.s3_port, keep_alive=True) as s3_proxy,
          FaultProxy(stack.dynamodb_port, keep_alive=True) as ddb_proxy):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_proxy.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb_proxy.url)
        clients = make_clients(REGION)
        blobs, docs = Blobs(clients.s3, BUCKET), Documents(clients.dynamodb, TABLE, "object_id", "ownerIndex")
        for _ in range(5):
            assert clients.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(data)
            assert blobs.get_bytes(key) == data
            assert (docs.get(doc_id) or {}).get("n") == 7
        blobs.put_bytes(f"{key}.copy", data)  # an upload waits for "100 Continue": the proxy answers it
        assert dao.blobs.get_bytes(f"{key}.copy") == data
    assert s3_proxy.counts.requests == 11 and ddb_proxy.counts.requests == 5
    # one connection each (a client that reconnected per request would show one per request)
    assert s3_proxy.counts.connections == 1 and ddb_proxy.counts.connections == 1
