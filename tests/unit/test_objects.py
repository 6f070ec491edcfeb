"""The committed generated protobuf code matches proto/objs.proto, and field numbers match SPEC §3.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from feaas.objects import AnyType, PlusScriptJob, PlusScriptNodeType, PlusScriptStatus, Receipt

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_not_stale(tmp_path):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", str(ROOT / "proto" / "objs.proto")], check=True)
    for name in ("objs_pb2.py", "objs_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        committed = (ROOT / "feaas" / "gen" / name).read_text()
        assert fresh == committed, f"feaas/gen/{name} is stale: run test_scripts/gen_proto.sh"


def numbers(message) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_contract_field_numbers():
    job = numbers(PlusScriptJob)
    assert [job[n] for n in ("object_id", "owner", "label", "username", "script", "status", "created_at",
                             "started_at", "completed_at", "updated_at", "registers", "receipts", "output",
                             "action_count", "request_cancel", "error_message",
                             "fargate_task_arn")] == list(range(1, 18))
    assert min(job[n] for n in ("percent", "success_count", "error_count", "iteration")) >= 18
    anyt = numbers(AnyType)
    assert (anyt["ptype"], anyt["ival"], anyt["sval"], anyt["byval"], anyt["json_data"], anyt["vmap"]) == (1,
                                                                                                           3,
                                                                                                           5,
                                                                                                           10,
                                                                                                           13,
                                                                                                           15)
    assert numbers(Receipt) == {"success": 1, "error_message": 2, "outputs": 3, "primary_output": 4,
                                "timestamp": 5, "cost": 6}
    assert PlusScriptStatus.Value("SUCCEEDED") == 3 and PlusScriptNodeType.Value("UPDATE_VALUES") == 10
