"""All configuration, read once from the environment into one typed object (SPEC §1.1)."""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from feaas.errors import ConfigError
from feaas.netpolicy import parse_allow_list


class RunMode(str, enum.Enum):
    RUN_SCRIPT = "RUN_SCRIPT"
    RUN_COLLECTION = "RUN_COLLECTION"
    RUN_ACTION = "RUN_ACTION"
    RUN_JOB = "RUN_JOB"
    RUN_STREAM = "RUN_STREAM"
    RUN_FILES = "RUN_FILES"
    RUN_PLUSSCRIPT = "RUN_PLUSSCRIPT"
    #: No job: publishes the action catalogue where plus-engine and the frontend read it.
    REGISTER_ACTIONS = "REGISTER_ACTIONS"
    SWEEP = "SWEEP"  # no job: record or relaunch the jobs of dead tasks (SPEC §8.3)


class JobType(str, enum.Enum):
    """A job document's ``job_type``: what ``RUN_JOB`` runs (SPEC §3)."""

    SINGLETON = "singleton"
    RUN_ON_COLLECTION = "run_on_collection"
    RUN_ON_STREAM = "run_on_stream"
    RUN_ON_FILES = "run_on_files"

    @property
    def run_mode(self) -> RunMode:
        return _JOB_TYPE_RUN_MODES[self]


#: The most items a run may have in flight (``CONCURRENCY``, and the job's live ``concurrency``).
MAX_CONCURRENCY = 256

_JOB_TYPE_RUN_MODES = {
    JobType.SINGLETON: RunMode.RUN_SCRIPT,
    JobType.RUN_ON_COLLECTION: RunMode.RUN_COLLECTION,
    JobType.RUN_ON_STREAM: RunMode.RUN_STREAM,
    JobType.RUN_ON_FILES: RunMode.RUN_FILES,
}


#: The run modes over many items: any number of tasks share such a job's chunks (SPEC §8.5).
MANY_ITEM_RUN_MODES = (RunMode.RUN_COLLECTION, RunMode.RUN_STREAM, RunMode.RUN_FILES)


def runs_many_items(run_mode: RunMode, job_type: object) -> bool:
    """Whether a task of ``run_mode`` on a job of ``job_type`` (its attribute, for ``RUN_JOB``)
    runs over many items; an unknown ``job_type`` is not (the runner fails the job on it)."""
    if run_mode is RunMode.RUN_JOB:
        known = {t.value: t for t in JobType}
        job_type = job_type or JobType.SINGLETON.value
        if not isinstance(job_type, str) or job_type not in known:
            return False
        return known[job_type].run_mode in MANY_ITEM_RUN_MODES
    return run_mode in MANY_ITEM_RUN_MODES


class LogFormat(str, enum.Enum):
    JSON = "json"
    TEXT = "text"


# Variables each run mode needs beyond the common ones (the others fall back to the job document).
_REQUIRED_FOR_MODE: dict[RunMode, tuple[str, ...]] = {
    RunMode.RUN_ACTION: ("action_id",),
    RunMode.RUN_PLUSSCRIPT: ("action_id",),
}


def log_format_for(log_format: LogFormat | None) -> LogFormat:
    """The log format asked for, else text on a terminal and JSON elsewhere."""
    if log_format is not None:
        return log_format
    return LogFormat.TEXT if sys.stdout.isatty() else LogFormat.JSON


class Settings(BaseSettings):
    """The worker's configuration. Tests build it with keyword arguments."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    run_mode: RunMode
    job_id: str = Field(min_length=1)
    username: str = Field(min_length=1)
    region: str = Field(min_length=1)
    dynamo_table: str = Field(min_length=1)
    dynamo_streams_table: str = Field(min_length=1)
    primary_bucket: str = Field(min_length=1)

    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None

    collection_owner: str | None = None
    action_id: str | None = None
    action_input_json: str = "{}"  # parsed after the job is claimed, so bad JSON is a recorded FAILED
    stream_id: str | None = None

    dynamo_key_attribute: str = Field(default="object_id", min_length=1)
    dynamo_owner_index: str = Field(default="ownerIndex", min_length=1)
    concurrency: int = Field(default=8, ge=1, le=MAX_CONCURRENCY)
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    lease_seconds: float = Field(default=90.0, gt=0, le=86400)
    shard_index: int = Field(
        default=0, ge=0, validation_alias=AliasChoices("shard_index", "aws_batch_job_array_index")
    )
    shard_count: int = Field(default=1, ge=1, le=10000)
    max_runtime_seconds: float | None = Field(default=None, gt=0)
    tolerated_failure_percent: float = Field(default=100.0, ge=0, le=100)
    #: how item receipts are written (feaas/dao/batch.py): "transaction" or "batch" (half the write units)
    receipt_mode: Literal["transaction", "batch"] = "transaction"
    log_format: LogFormat | None = None
    log_level: str = "INFO"
    #: the whole task's memory budget, shared by the worker and its children (default: the
    #: container's cgroup limit; read through :func:`feaas.resources.memory_budget_mb`)
    memory_limit_mb: int | None = Field(default=None, gt=0)
    #: the largest value (register, output, formatted text, BUNDLER JSON) a node may produce
    max_value_mb: int = Field(default=16, gt=0, le=4096)
    metrics: Literal["none", "emf"] = "none"  # "emf": CloudWatch Embedded Metric Format lines on stdout
    ecs_container_metadata_uri_v4: str | None = None  # set by ECS: where the task's ARN is read
    #: set by AWS Batch: the task's name off ECS (``<id>:<index>`` for an array child)
    aws_batch_job_id: str | None = None
    #: Test-only: loopback ``IP:PORT`` servers that web.screenshot may reach (default: none).
    screenshot_allow_hosts: str = ""

    @field_validator("screenshot_allow_hosts")
    @classmethod
    def _loopback_servers_only(cls, value: str) -> str:
        parse_allow_list(value)  # ValueError (without the value) when an entry is not loopback IP:PORT
        return value

    @property
    def screenshot_allowed(self) -> frozenset[tuple[str, int]]:
        return parse_allow_list(self.screenshot_allow_hosts)

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        problems = _combination_problems(self.model_dump())
        if self.shard_index >= self.shard_count:
            problems.append("SHARD_INDEX: must be smaller than SHARD_COUNT")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def effective_log_format(self) -> LogFormat:
        return log_format_for(self.log_format)


class SweepSettings(BaseSettings):
    """``RUN_MODE=SWEEP``: no job, user or bucket; the tables, and what a relaunch needs (the
    cluster, task definition and network settings run-task.sh uses, named as in ``.env.deploy``)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True,
                                      defer_build=True)  # validators built on first use

    run_mode: Literal[RunMode.SWEEP]
    region: str = Field(min_length=1)
    dynamo_table: str = Field(min_length=1)
    dynamo_streams_table: str = Field(min_length=1)
    dynamo_key_attribute: str = Field(default="object_id", min_length=1)
    dynamo_owner_index: str = Field(default="ownerIndex", min_length=1)
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    cluster: str = Field(min_length=1)
    task_family: str = ""  # used when ECS no longer describes a dead task's task definition
    subnets: str = ""  # comma-separated
    security_groups: str = ""  # comma-separated
    assign_public_ip: Literal["ENABLED", "DISABLED"] = "ENABLED"
    container_name: str = "worker"
    max_attempts: int = Field(default=3, ge=1, le=100)
    log_format: LogFormat | None = None
    log_level: str = "INFO"


def load_sweep_settings(environ: Mapping[str, str] | None = None) -> SweepSettings:
    """The sweeper's settings; :class:`ConfigError` names every missing or invalid variable."""
    try:
        if environ is None:
            return SweepSettings()
        given: dict[str, Any] = {k.lower(): v for k, v in environ.items()
                                 if k.lower() in SweepSettings.model_fields}
        return SweepSettings(**given)
    except ValidationError as exc:
        problems = [f"{str(e['loc'][0]).upper()}: {'missing' if e['type'] == 'missing' else e['msg']}"
                    for e in exc.errors(include_input=False, include_url=False) if e["loc"]]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def _combination_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks across variables; ``values`` is either the raw environment (lower-cased) or a dump."""
    problems: list[str] = []
    try:
        mode: RunMode | None = RunMode(values.get("run_mode"))
    except ValueError:
        mode = None
    if mode is not None:
        problems += [
            f"{name.upper()}: required for {mode.value}"
            for name in _REQUIRED_FOR_MODE.get(mode, ())
            if not values.get(name)
        ]
    if (values.get("access_key") in (None, "")) != (values.get("secret_key") in (None, "")):
        problems.append("ACCESS_KEY/SECRET_KEY: set both or neither")
    if str(values.get("log_level") or "INFO").upper() not in (
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
    ):
        problems.append("LOG_LEVEL: must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return problems


#: The frontend host REGISTER_ACTIONS publishes under when neither PLUS_HOSTNAME nor HOSTNAME is set
#: (upstream's default).
DEFAULT_HOSTNAME = "plus_dataskeptic_com"


class RegisterSettings(BaseModel):
    """``RUN_MODE=REGISTER_ACTIONS``: no job and no user; the documents table, the bucket and the
    frontend's host name (``PLUS_HOSTNAME``, else ``HOSTNAME``: container runtimes set ``HOSTNAME``
    to the container's own name, so a deployment sets ``PLUS_HOSTNAME``). Read only by
    :func:`load_register_settings`, which alone decides which variables count."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    run_mode: Literal[RunMode.REGISTER_ACTIONS]
    region: str = Field(min_length=1)
    dynamo_table: str = Field(min_length=1)
    primary_bucket: str = Field(min_length=1)
    hostname: str = Field(default=DEFAULT_HOSTNAME, min_length=1, pattern=r"^[^/\s]+$",
                          validation_alias=AliasChoices("plus_hostname", "hostname"))
    dynamo_key_attribute: str = Field(default="object_id", min_length=1)
    dynamo_owner_index: str = Field(default="ownerIndex", min_length=1)
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    log_format: LogFormat | None = None
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check_combinations(self) -> RegisterSettings:
        problems = [p for p in _combination_problems(self.model_dump()) if not p.startswith("RUN_MODE")]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_register_settings(environ: Mapping[str, str] | None = None) -> RegisterSettings:
    """:class:`RegisterSettings` from ``environ`` (default: the process environment); a
    :class:`ConfigError` names every missing or invalid variable, never a value."""
    import os

    source = os.environ if environ is None else environ
    lowered = {k.lower(): v for k, v in source.items()}
    names = set(RegisterSettings.model_fields) | {"plus_hostname"}
    given: dict[str, Any] = {k: v for k, v in lowered.items() if k in names and v != ""}
    if "plus_hostname" in given:  # PLUS_HOSTNAME wins over the runtime's HOSTNAME
        given.pop("hostname", None)
    try:
        return RegisterSettings(**given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = [str(part) for part in err["loc"] if part != "__root__"]
            if not loc:
                problems.extend(str(err["msg"]).removeprefix("Value error, ").split("; "))
                continue
            name = "PLUS_HOSTNAME/HOSTNAME" if loc[0] in ("hostname", "plus_hostname") else loc[0].upper()
            problems.append(f"{name}: missing" if err["type"] == "missing" else f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(dict.fromkeys(problems))) from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default: the process environment).

    Raises :class:`ConfigError` naming every missing or invalid variable — never their values.
    """
    try:
        if environ is None:
            return Settings()
        lowered = {k.lower(): v for k, v in environ.items()}
        given: dict[str, Any] = {k: v for k, v in lowered.items() if k in _FIELD_NAMES}
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, environ)) from None


_FIELD_NAMES = set(Settings.model_fields) | {"aws_batch_job_array_index"}


def _describe(exc: ValidationError, environ: Mapping[str, str] | None) -> str:
    problems: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in err["loc"] if part != "__root__"]
        if not loc:  # a model-level check: its message already names the variables
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.extend(message.split("; "))
            continue
        name = loc[0].upper()
        problems.append(f"{name}: missing" if err["type"] == "missing" else f"{name}: {err['msg']}")
    if environ is None:
        import os

        environ = os.environ
    lowered = {k.lower(): v for k, v in environ.items()}
    for extra in _combination_problems(lowered):
        if extra not in problems:
            problems.append(extra)
    return "invalid configuration: " + "; ".join(sorted(set(problems), key=problems.index))
