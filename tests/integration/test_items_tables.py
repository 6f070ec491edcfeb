"""Collection runs on tables shaped differently: keys-only owner index, custom key and index names."""

from __future__ import annotations

import collections

import pytest

from feaas.dao import Documents
from tests.conftest import BUCKET, STREAMS_TABLE
from tests.support import localstack
from tests.support.collections import new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, job_item


@pytest.fixture(scope="module")
def odd_table(stack, dao):
    """Documents table keyed by ``doc_id`` with a KEYS_ONLY index named ``byOwner``."""
    localstack.create_resources(stack.env, table="odd-docs", streams_table=STREAMS_TABLE, bucket=BUCKET,
                                key_attribute="doc_id", owner_index="byOwner",
                                owner_index_projection="KEYS_ONLY")
    return Documents(dao.docs.client, "odd-docs", "doc_id", "byOwner")


def test_keys_only_index_with_custom_key_and_index_names(odd_table, dao, run_worker):
    owner = new_owner()
    odd_dao = type(dao)(docs=odd_table, streams=dao.streams, blobs=dao.blobs)
    ids = seed_collection(odd_dao, owner, 120, key_attribute="doc_id")
    item = job_item(tag_script(), key_attribute="doc_id", collection_owner=owner)
    odd_table.put_new(item)
    run = run_worker(item["object_id"], RUN_MODE="RUN_COLLECTION", DYNAMO_TABLE="odd-docs",
                     DYNAMO_KEY_ATTRIBUTE="doc_id", DYNAMO_OWNER_INDEX="byOwner")
    assert run.code == 0, run.stdout[-2000:]
    job = odd_table.get(item["object_id"])
    assert job["status"] == "SUCCEEDED" and job["success_count"] == 120
    rows = receipts(dao, f"{NAMESPACE}stream-run-all.{item['object_id'].rsplit('job.', 1)[1]}")
    assert collections.Counter(r["object_id"] for r in rows) == collections.Counter(ids)
    # the items were fetched whole (the index only has keys): n was read and written back
    sample = odd_table.get(ids[7])
    assert sample["n_plus_one"] == 8 and sample["status"] == "processed"
