#!/usr/bin/env bash
# Regenerate feaas/gen/objs_pb2.py(i) from proto/objs.proto with .venv's grpcio-tools (dev extra).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: test_scripts/gen_proto.sh [OUT_DIR]

Regenerates objs_pb2.py and objs_pb2.pyi from proto/objs.proto into OUT_DIR (default
feaas/gen) with .venv/bin/python -m grpc_tools.protoc (building .venv when missing).
USAGE
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x .venv/bin/python ]] || test_scripts/bootstrap.sh
out="${1:-feaas/gen}"
.venv/bin/python -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" proto/objs.proto
