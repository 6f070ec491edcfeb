"""``RUN_MODE=REGISTER_ACTIONS``: publish the action catalogue where plus-engine and the frontend read
it (LEGACY_ACTIONS.md §3, SPEC §8.2). No job, no user: two S3 objects and two documents, in
upstream's order, every action under its new id and, for the 24 upstream ones, under upstream's
class path too. Exits 0 after publishing; 2 on bad configuration, 69 when storage cannot be
reached, 70 when a write fails (nothing is half-published silently: the error is logged).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from feaas import logs
from feaas.actions.base import Action
from feaas.actions.legacy import LegacyAction, parameter_json
from feaas.actions.registry import Registry
from feaas.dao import Blobs, Documents, checked_clients
from feaas.errors import StorageError
from feaas.exitcodes import ExitCode
from feaas.logs import event
from feaas.settings import RegisterSettings, log_format_for
from src.startup import storage_or_exit

logger = logging.getLogger("src.register")

SYS_NAME = "plus-worker"
RUNTIME = "fargate"
#: plus-engine's catalogue of this worker: S3 object and the document pointing at it.
ACTIONS_KEY = f"sys/actions/{SYS_NAME}/actions.json"
ACTIONS_DOC = f"sys.actions.{SYS_NAME}.{SYS_NAME}"
ACTIONS_OWNER = f"sys.actions.{SYS_NAME}"


def frontend_key(hostname: str) -> str:
    """The frontend's copy of the catalogue for ``hostname``."""
    return f"sys/{hostname}/plusworker/{SYS_NAME}/actions.json"


def frontend_doc(hostname: str) -> tuple[str, str]:
    """``(object_id, owner)`` of the frontend's pointer document for ``hostname``."""
    owner = f"sys.{hostname}.plusworker"
    return f"{owner}.{SYS_NAME}", owner


def entry(action: Action) -> dict[str, Any]:
    """One action as upstream's REGISTER_ACTIONS listed it: ``action_id``, ``runtime``,
    ``class_path``, ``label``, ``short_desc``, ``params`` and ``outputs`` as plus-engine's Parameter
    JSON, ``sys_name``. An upstream interface keeps upstream's values (class path = its id, label =
    its class name, short_desc ""); a new id is its own class path (the id the worker resolves),
    labelled with its class name; ``short_desc`` is "" as upstream's always was."""
    if isinstance(action, LegacyAction):
        found = action.catalogue_entry()
        found.pop("implements", None)
        return {
            "action_id": found["action_id"],
            "runtime": RUNTIME,
            "class_path": found["class_path"],
            "label": found["label"],
            "short_desc": found["short_desc"],
            "params": found["params"],
            "outputs": found["outputs"],
            "sys_name": SYS_NAME,
        }
    return {
        "action_id": action.id,
        "runtime": RUNTIME,
        "class_path": action.id,
        "label": type(action).__name__,
        "short_desc": "",
        "params": [] if action.accepts_any_inputs else [parameter_json(p) for p in action.inputs],
        "outputs": [parameter_json(p) for p in action.outputs],
        "sys_name": SYS_NAME,
    }


def catalogue(registry: Registry) -> dict[str, dict[str, Any]]:
    """action_id → entry: every action under its new id, then every upstream class path."""
    return {a.id: entry(a) for a in [*registry.actions(), *registry.legacy_actions()]}


def publish(
    docs: Documents, blobs: Blobs, hostname: str, registry: Registry, *, now_ms: int | None = None
) -> dict[str, Any]:
    """Write the two objects and the two documents (§3 order); returns what was written.
    :class:`StorageError` from any write propagates: unlike upstream, a failed write is not
    swallowed, so the pointer documents never claim an object that is not there."""
    actions = catalogue(registry)
    body = json.dumps(actions, ensure_ascii=False).encode("utf-8")
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    blobs.put_bytes(ACTIONS_KEY, body, "application/json")
    front_key = frontend_key(hostname)
    blobs.put_bytes(front_key, body, "application/json")
    front_id, front_owner = frontend_doc(hostname)
    docs.put(
        {
            docs.key_attribute: front_id,
            "owner": front_owner,
            "source": SYS_NAME,
            "actions_s3_key": front_key,
            "actions_count": len(actions),
            "last_updated_at": stamp,
        }
    )
    docs.put(
        {
            docs.key_attribute: ACTIONS_DOC,
            "owner": ACTIONS_OWNER,
            "source": SYS_NAME,
            "actions_s3_key": ACTIONS_KEY,
            "actions_count": len(actions),
            "last_updated_at": stamp,
        }
    )
    return {
        "actions_count": len(actions),
        "objects": [ACTIONS_KEY, front_key],
        "documents": [front_id, ACTIONS_DOC],
    }


def configure_logging(settings: RegisterSettings) -> None:
    logs.configure(log_format_for(settings.log_format).value, settings.log_level)
    logs.bind(run_mode=settings.run_mode.value)


def run_register(settings: RegisterSettings) -> int:
    from src.actions import default_registry

    clients = storage_or_exit(lambda: checked_clients(
        settings.region, settings.access_key, settings.secret_key, table=settings.dynamo_table,
        streams_table=None, bucket=settings.primary_bucket))
    if isinstance(clients, ExitCode):
        return clients
    docs = Documents(
        clients.dynamodb, settings.dynamo_table, settings.dynamo_key_attribute, settings.dynamo_owner_index
    )
    try:
        written = publish(
            docs, Blobs(clients.s3, settings.primary_bucket), settings.hostname, default_registry()
        )
    except StorageError as exc:
        event(logger, "register_failed", level=logging.ERROR, error=str(exc))
        return ExitCode.INTERNAL
    event(logger, "actions_registered", hostname=settings.hostname, **written)
    return ExitCode.SUCCEEDED
