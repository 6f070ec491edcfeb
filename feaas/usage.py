"""The worker's ``--help``: what a person needs to start it by hand (issue 11)."""

from __future__ import annotations

from feaas.exitcodes import ExitCode
from feaas.settings import RunMode

VARIABLES = """\
Required:
  RUN_MODE                 one of {modes}
  JOB_ID                   key of the job document in DYNAMO_TABLE (not SWEEP, REGISTER_ACTIONS)
  USERNAME                 the job's user (must match the job's username; not SWEEP, REGISTER_ACTIONS)
  REGION                   AWS region
  DYNAMO_TABLE             documents table (jobs, collections)
  DYNAMO_STREAMS_TABLE     streams table (receipts of runs over many items; not REGISTER_ACTIONS)
  PRIMARY_BUCKET           S3 bucket holding every user's files
Per run mode:
  SWEEP                    no JOB_ID/USERNAME/PRIMARY_BUCKET: records or relaunches the jobs of dead
                           tasks; reads CLUSTER (required), TASK_FAMILY, SUBNETS, SECURITY_GROUPS,
                           ASSIGN_PUBLIC_IP, CONTAINER_NAME (for relaunches) and MAX_ATTEMPTS
                           (default 3); setup.sh schedules it every minute
  ACTION_ID, ACTION_INPUT_JSON   RUN_ACTION: the action and its inputs (JSON object, default {{}});
                           RUN_PLUSSCRIPT: a stored script's document id (in USERNAME's namespace)
                           and its inputs
  PLUS_HOSTNAME, HOSTNAME  REGISTER_ACTIONS: the frontend's host the catalogue is published for
                           (PLUS_HOSTNAME wins: container runtimes set HOSTNAME; default
                           plus_dataskeptic_com). This mode needs only REGION, DYNAMO_TABLE and
                           PRIMARY_BUCKET
  COLLECTION_OWNER, STREAM_ID    RUN_COLLECTION / RUN_STREAM (default: from the job document)
Optional:
  ACCESS_KEY, SECRET_KEY   explicit keys, both or neither (default: the task role)
  CONCURRENCY              items or action nodes in flight (default 8)
  HEARTBEAT_SECONDS, LEASE_SECONDS   heartbeat period and lease (default 15, 90)
  SHARD_INDEX, SHARD_COUNT           a hint only: the tasks of a many-item run share its chunks
  MAX_RUNTIME_SECONDS      whole-job deadline (the job's timeout_seconds wins)
  TOLERATED_FAILURE_PERCENT  failure share above which a many-item run FAILS (default 100)
  MEMORY_LIMIT_MB          the task's memory budget, worker + children (default: the cgroup's limit)
  MAX_VALUE_MB             largest value a node may produce (default 16)
  DYNAMO_KEY_ATTRIBUTE, DYNAMO_OWNER_INDEX   table key and owner index (object_id, ownerIndex)
  LOG_FORMAT, LOG_LEVEL    json or text (default: text on a terminal), level name (INFO)
  METRICS                  none or emf (CloudWatch Embedded Metric Format lines)
  SCREENSHOT_ALLOW_HOSTS   test-only: loopback IP:PORT servers web.screenshot may reach (default none)
  AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3   local endpoints (read by boto3 itself)
"""


def worker_usage() -> str:
    """The text of ``python -m src.worker --help``."""
    codes = "\n".join(f"  {int(code):<3} {code.meaning}" for code in ExitCode)
    modes = ", ".join(mode.value for mode in RunMode)
    return (
        "Usage: python -m src.worker\n\n"
        "Claims one PlusScript job, runs it and records SUCCEEDED or FAILED on the job document.\n"
        "All configuration comes from environment variables (docker run --env-file job.env).\n\n"
        + VARIABLES.format(modes=modes)
        + "\nExit codes:\n" + codes + "\n"
    )
