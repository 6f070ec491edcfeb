#!/usr/bin/env bash
# Regenerate feaas/gen/objs_pb2.py(i) from proto/objs.proto (needs the dev extra: grpcio-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-feaas/gen}"
python -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" proto/objs.proto
