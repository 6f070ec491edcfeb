from __future__ import annotations

import pytest

from feaas.errors import ConfigError
from feaas.settings import RunMode, Settings, load_settings

BASE = {"RUN_MODE": "RUN_SCRIPT", "JOB_ID": "h/u/job.1", "USERNAME": "u", "REGION": "us-east-1",
        "DYNAMO_TABLE": "docs", "DYNAMO_STREAMS_TABLE": "streams", "PRIMARY_BUCKET": "bucket"}


def test_defaults():
    s = load_settings(BASE)
    assert s.run_mode is RunMode.RUN_SCRIPT
    assert (s.concurrency, s.heartbeat_seconds, s.lease_seconds, s.shard_index, s.shard_count) == (
        8, 15, 90, 0, 1)
    assert (s.dynamo_key_attribute, s.dynamo_owner_index, s.tolerated_failure_percent) == (
        "object_id", "ownerIndex", 100)
    assert s.access_key is None


def test_every_missing_and_invalid_variable_is_named_in_one_message_without_values():
    env = {"RUN_MODE": "RUN_ACTION", "CONCURRENCY": "many", "SECRET_KEY": "s3cr3t-VALUE",
           "HEARTBEAT_SECONDS": "-1"}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    text = str(err.value)
    for name in ("JOB_ID", "USERNAME", "REGION", "DYNAMO_TABLE", "DYNAMO_STREAMS_TABLE", "PRIMARY_BUCKET",
                 "CONCURRENCY", "HEARTBEAT_SECONDS", "ACTION_ID", "ACCESS_KEY/SECRET_KEY"):
        assert name in text
    assert "s3cr3t" not in text and "many" not in text


def test_unknown_run_mode_is_invalid():
    with pytest.raises(ConfigError, match="RUN_MODE"):
        load_settings({**BASE, "RUN_MODE": "RUN_EVERYTHING"})


def test_secrets_are_secret_types_and_not_in_repr():
    s = load_settings({**BASE, "ACCESS_KEY": "AKIADISTINCTIVE", "SECRET_KEY": "verysecretvalue"})
    assert s.secret_key is not None and s.secret_key.get_secret_value() == "verysecretvalue"
    assert "verysecret" not in repr(s) and "AKIADISTINCTIVE" not in repr(s)


def test_shard_index_must_be_below_count_and_batch_array_index_is_accepted():
    with pytest.raises(ConfigError, match="SHARD_INDEX"):
        load_settings({**BASE, "SHARD_INDEX": "3", "SHARD_COUNT": "3"})
    assert load_settings({**BASE, "AWS_BATCH_JOB_ARRAY_INDEX": "2", "SHARD_COUNT": "4"}).shard_index == 2


def test_keyword_construction_for_tests():
    s = Settings(run_mode="RUN_ACTION", job_id="j", username="u", region="r", dynamo_table="t",
                 dynamo_streams_table="s", primary_bucket="b", action_id="sys.math.add")
    assert s.action_id == "sys.math.add" and s.action_input_json == "{}"


def test_the_configuration_is_read_by_pydantic_settings() -> None:
    # pydantic-settings is one of the project's required packages: the worker's and the sweeper's
    # settings are BaseSettings models (one configuration system, read from the environment).
    from pydantic_settings import BaseSettings

    from feaas.settings import Settings, SweepSettings

    assert issubclass(Settings, BaseSettings)
    assert issubclass(SweepSettings, BaseSettings)
