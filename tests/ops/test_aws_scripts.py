"""setup.sh, deploy.sh, run-task.sh and show_logs.sh end to end against moto_server.

Given an empty emulated account, when setup.sh runs twice, then the resources exist as the
worker needs them and the second run changes nothing; deploy --dry-run writes nothing;
run-task starts one task per shard, waits, prints logs and exits with the container's code.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import EX_AWS, EX_CONFIG, EX_USAGE, REGION, ROOT, run_script
from tests.support.fakebatch import FakeBatch

FAMILY = "ops-test"
CLUSTER = "ops-test-cluster"
TABLE = "plus-docs"
STREAMS_TABLE = "plus-streams"
BUCKET = "plus-bucket"
SECRET_NAMES = {"ACCESS_KEY", "SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def setup_args(env_file: Path) -> list[str]:
    return [
        "./setup.sh",
        "--yes",
        "--region",
        REGION,
        "--cluster",
        CLUSTER,
        "--family",
        FAMILY,
        "--table",
        TABLE,
        "--streams-table",
        STREAMS_TABLE,
        "--bucket",
        BUCKET,
        "--cpu",
        "512",
        "--memory",
        "1024",
        "--env-file",
        str(env_file),
    ]


@pytest.fixture(scope="module")
def deployed(aws_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """setup.sh run once on an empty account."""
    env_file = tmp_path_factory.mktemp("deploy") / ".env.deploy"
    first = run_script(setup_args(env_file), aws_env)
    settings = dict(
        line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#")
    )
    return {"env_file": env_file, "first": first, "settings": settings}


def latest_taskdef(c: Any) -> dict[str, Any]:
    return c("ecs").describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]


def snapshot(c: Any, env_file: Path) -> dict[str, Any]:
    """Everything setup.sh manages, as the emulator reports it."""
    roles = {}
    for role in (f"{FAMILY}-execution", f"{FAMILY}-task", f"{FAMILY}-scheduler"):
        roles[role] = {
            "role": c("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"],
            "policies": [
                c("iam").get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in c("iam").list_role_policies(RoleName=role)["PolicyNames"]
            ],
        }
    return {
        "taskdefs": c("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"],
        "clusters": c("ecs").list_clusters()["clusterArns"],
        "repo": c("ecr").describe_repositories(repositoryNames=[FAMILY])["repositories"],
        "lifecycle": c("ecr").get_lifecycle_policy(repositoryName=FAMILY)["lifecyclePolicyText"],
        "log_groups": c("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{FAMILY}")["logGroups"],
        "roles": roles,
        "schedule": {k: v for k, v in c("scheduler").get_schedule(Name=f"{FAMILY}-sweeper").items()
                     if k != "ResponseMetadata"},
        "batch_ces": c("batch").describe_compute_environments()["computeEnvironments"],
        "batch_queues": c("batch").describe_job_queues()["jobQueues"],
        "batch_jobdefs": c("batch").describe_job_definitions(jobDefinitionName=FAMILY)["jobDefinitions"],
        "env_file": env_file.read_text(),
    }


def test_setup_creates_the_resources_the_worker_needs(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    assert "done: 18 change(s)" in deployed["first"].stdout

    clusters = c("ecs").describe_clusters(clusters=[CLUSTER])["clusters"]
    assert [c["status"] for c in clusters] == ["ACTIVE"]
    repo = c("ecr").describe_repositories(repositoryNames=[FAMILY])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    rules = json.loads(c("ecr").get_lifecycle_policy(repositoryName=FAMILY)["lifecyclePolicyText"])["rules"]
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "any"}
    groups = c("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{FAMILY}")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(f"/ecs/{FAMILY}", 30)]

    settings = deployed["settings"]
    assert settings["ECR_URI"] == repo["repositoryUri"]
    assert settings["SUBNETS"] and settings["SECURITY_GROUPS"]  # found in the default VPC
    assert not SECRET_NAMES & set(settings)


def test_task_role_policy_is_least_privilege(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    role = f"{FAMILY}-task"
    trust = c("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"

    assert c("iam").list_role_policies(RoleName=role)["PolicyNames"] == ["plus-worker-data"]
    policy = c("iam").get_role_policy(RoleName=role, PolicyName="plus-worker-data")
    resources: set[str] = set()
    actions: set[str] = set()
    for st in policy["PolicyDocument"]["Statement"]:
        assert st["Effect"] == "Allow"
        resources.update([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
        actions.update([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    prefix = f"arn:aws:dynamodb:{REGION}:123456789012:table"
    ecs = f"arn:aws:ecs:{REGION}:123456789012"
    assert resources == {
        f"{prefix}/{TABLE}",
        f"{prefix}/{TABLE}/index/ownerIndex",
        f"{prefix}/{STREAMS_TABLE}",
        f"arn:aws:s3:::{BUCKET}",
        f"arn:aws:s3:::{BUCKET}/*",
        # the sweeper: why a task of this cluster stopped, relaunch with the family, pass its roles
        f"{ecs}:task/{CLUSTER}/*",
        f"{ecs}:task-definition/{FAMILY}",
        f"{ecs}:task-definition/{FAMILY}:*",
        f"arn:aws:iam::123456789012:role/{FAMILY}-task",
        f"arn:aws:iam::123456789012:role/{FAMILY}-execution",
    }
    assert not any("*" in a for a in actions)
    assert not {"dynamodb:Scan", "dynamodb:DeleteTable", "s3:DeleteObject", "ecs:StopTask"} & actions
    assert {"ecs:DescribeTasks", "ecs:RunTask", "iam:PassRole"} <= actions
    by_action: dict[str, list[dict[str, Any]]] = {}
    for st in policy["PolicyDocument"]["Statement"]:
        for a in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
            by_action.setdefault(a, []).append(st)
    # DeleteItem only for the index of held jobs, never a user's stream or a document
    [delete] = by_action["dynamodb:DeleteItem"]
    assert delete["Resource"] == f"{prefix}/{STREAMS_TABLE}"
    assert delete["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["sys/plus-worker/running"]}
    }
    for action in ("ecs:DescribeTasks", "ecs:RunTask"):
        [st] = by_action[action]
        assert st["Condition"] == {"ArnEquals": {"ecs:cluster": f"{ecs}:cluster/{CLUSTER}"}}
    [passrole] = by_action["iam:PassRole"]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_setup_schedules_the_sweeper_every_minute(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    ecs = f"arn:aws:ecs:{REGION}:123456789012"
    schedule = c("scheduler").get_schedule(Name=f"{FAMILY}-sweeper")
    assert schedule["ScheduleExpression"] == "rate(1 minute)" and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == f"{ecs}:cluster/{CLUSTER}"
    params = target["EcsParameters"]
    assert params["TaskDefinitionArn"] == f"{ecs}:task-definition/{FAMILY}"  # latest revision
    assert params["LaunchType"] == "FARGATE" and params["TaskCount"] == 1
    settings = deployed["settings"]
    assert params["NetworkConfiguration"]["awsvpcConfiguration"] == {
        "Subnets": settings["SUBNETS"].split(","),
        "SecurityGroups": settings["SECURITY_GROUPS"].split(","),
        "AssignPublicIp": "ENABLED",
    }
    [override] = json.loads(target["Input"])["containerOverrides"]
    assert override["name"] == latest_taskdef(c)["containerDefinitions"][0]["name"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env == {
        "RUN_MODE": "SWEEP",
        "CLUSTER": CLUSTER,
        "TASK_FAMILY": FAMILY,
        "SUBNETS": settings["SUBNETS"],
        "SECURITY_GROUPS": settings["SECURITY_GROUPS"],
        "ASSIGN_PUBLIC_IP": "ENABLED",
        "CONTAINER_NAME": "worker",
        "MAX_ATTEMPTS": "3",
    }
    # What the task definition does not give, the override does: the sweeper's settings load.
    from feaas.settings import load_sweep_settings

    td_env = {e["name"]: e["value"] for e in latest_taskdef(c)["containerDefinitions"][0]["environment"]}
    sweep = load_sweep_settings({**td_env, **env})
    assert (sweep.cluster, sweep.task_family, sweep.max_attempts) == (CLUSTER, FAMILY, 3)

    # The scheduler's role: assumed by EventBridge Scheduler of this account, may run only the
    # worker's family on this cluster and pass only the task's two roles.
    role = c("iam").get_role(RoleName=f"{FAMILY}-scheduler")["Role"]
    assert target["RoleArn"] == role["Arn"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    [name] = c("iam").list_role_policies(RoleName=f"{FAMILY}-scheduler")["PolicyNames"]
    statements = c("iam").get_role_policy(RoleName=f"{FAMILY}-scheduler", PolicyName=name)["PolicyDocument"][
        "Statement"
    ]
    granted = {(st["Action"], tuple(st["Resource"])) for st in statements}
    assert granted == {
        ("ecs:RunTask", (f"{ecs}:task-definition/{FAMILY}", f"{ecs}:task-definition/{FAMILY}:*")),
        ("iam:PassRole", (settings["TASK_ROLE_ARN"], settings["EXECUTION_ROLE_ARN"])),
    }
    run = next(st for st in statements if st["Action"] == "ecs:RunTask")
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": f"{ecs}:cluster/{CLUSTER}"}}


def test_task_definition(deployed: dict[str, Any], aws_env: dict[str, str], client: Any) -> None:
    c = client
    td = latest_taskdef(c)
    task_role = c("iam").get_role(RoleName=f"{FAMILY}-task")["Role"]["Arn"]
    exec_role = c("iam").get_role(RoleName=f"{FAMILY}-execution")["Role"]["Arn"]
    assert td["taskRoleArn"] == task_role == deployed["settings"]["TASK_ROLE_ARN"]
    assert td["executionRoleArn"] == exec_role
    assert td["networkMode"] == "awsvpc"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    assert td["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    [container] = td["containerDefinitions"]
    assert container["name"] == "worker"
    assert container["image"] == deployed["settings"]["ECR_URI"] + ":latest"
    assert container["stopTimeout"] == 120
    # Hardened (issue 14): the image's files are read-only; /tmp, a volume on the task's ephemeral
    # storage sized for media work, is the only writable place.
    assert container["readonlyRootFilesystem"] is True
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    [volume] = td["volumes"]
    # task storage, no host path
    assert volume["name"] == "tmp" and not (volume.get("host") or {}).get("sourcePath")
    assert td["ephemeralStorage"] == {"sizeInGiB": 50}
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": f"/ecs/{FAMILY}",
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "worker",
        },
    }
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        "REGION": REGION,
        "DYNAMO_TABLE": TABLE,
        "DYNAMO_STREAMS_TABLE": STREAMS_TABLE,
        "DYNAMO_OWNER_INDEX": "ownerIndex",
        "PRIMARY_BUCKET": BUCKET,
        "LOG_FORMAT": "json",
    }
    assert "secrets" not in container
    # The init process is tini in the image (see the Dockerfile), so ECS must not add a second one.
    assert not container.get("linuxParameters", {}).get("initProcessEnabled")
    assert '"/usr/bin/tini", "--"' in (ROOT / "Dockerfile").read_text()


def test_setup_second_run_changes_nothing(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    env_file = deployed["env_file"]
    before = snapshot(c, env_file)
    # Settings now come from the env file; only --yes is needed.
    second = run_script(["./setup.sh", "--yes", "--env-file", str(env_file)], aws_env)
    assert "done: 0 change(s)" in second.stdout, second.stdout
    assert "registered" not in second.stdout and "created" not in second.stdout
    assert snapshot(c, env_file) == before


def test_setup_requires_settings_and_yes(aws_env: dict[str, str], tmp_path: Path, client: Any) -> None:
    missing = run_script(["./setup.sh", "--yes", "--env-file", str(tmp_path / "e")], aws_env, check=False)
    assert missing.returncode == EX_CONFIG
    assert "DYNAMO_TABLE DYNAMO_STREAMS_TABLE PRIMARY_BUCKET" in missing.stderr
    no_tty = run_script(["./setup.sh", "--env-file", str(tmp_path / "e")], aws_env, check=False)
    assert no_tty.returncode == EX_USAGE and "--yes" in no_tty.stderr
    assert not (tmp_path / "e").exists()


def test_deploy_dry_run_writes_nothing(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    before = c("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    jobdefs_before = c("batch").describe_job_definitions(jobDefinitionName=FAMILY)["jobDefinitions"]
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = run_script(["./deploy.sh", "--dry-run", "--env-file", str(deployed["env_file"])], aws_env).stdout
    uri = deployed["settings"]["ECR_URI"]
    assert "docker buildx build --platform linux/amd64" in out
    assert f"--tag {uri}:{sha} --tag {uri}:latest --push" in out
    taskdef_part, jobdef_part = out.split("would register this task definition:\n", 1)[1].split(
        "deploy: would register this AWS Batch job definition:\n", 1)
    registered = json.loads(taskdef_part)
    assert registered["containerDefinitions"][0]["image"] == f"{uri}:{sha}"
    assert registered["containerDefinitions"][0]["stopTimeout"] == 120
    assert "taskDefinitionArn" not in registered and "revision" not in registered
    # the AWS Batch job definition gets a revision with the same image (run-task.sh --batch)
    jobdef = json.loads(jobdef_part.rsplit("deploy:", 1)[0])
    assert jobdef["jobDefinitionName"] == FAMILY and jobdef["containerProperties"]["image"] == f"{uri}:{sha}"
    assert "jobDefinitionArn" not in jobdef and "revision" not in jobdef
    assert c("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"] == before
    assert c("batch").describe_job_definitions(jobDefinitionName=FAMILY)["jobDefinitions"] == jobdefs_before


def put_log_line(c: Any, stream: str, message: dict[str, Any] | str) -> None:
    group = f"/ecs/{FAMILY}"
    logs = c("logs")
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]
    if not any(s["logStreamName"] == stream for s in streams):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    text = message if isinstance(message, str) else json.dumps(message)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": text}],
    )


def test_run_task_shards_waits_and_shows_logs(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    job_id = "plus_example_com/ada@example.com/job.1111"
    proc = subprocess.Popen(
        [
            "./run-task.sh",
            "--env-file",
            str(deployed["env_file"]),
            "--run-mode",
            "RUN_COLLECTION",
            "--job-id",
            job_id,
            "--username",
            "ada@example.com",
            "--collection-owner",
            "plus_example_com/ada@example.com/things",
            "--shards",
            "2",
        ],
        cwd=ROOT,
        env=aws_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # While run-task.sh waits, play the container: write a log line into each task's stream.
        deadline = time.monotonic() + 30
        while True:
            arns = c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]
            if len(arns) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(arns) == 2
        for arn in arns:
            put_log_line(
                c,
                f"worker/worker/{arn.rsplit('/', 1)[1]}",
                {"event": "job_finished", "job_id": job_id, "task": arn},
            )
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert stdout.count("started shard") == 2
    assert stdout.count('"event": "job_finished"') == 2  # pretty-printed log lines
    assert stdout.count(": exit code 0, stop reason") == 2
    assert stdout.rstrip().endswith("run-task: exit code 0")

    tasks = c("ecs").describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    shards = set()
    for task in tasks:
        assert task["launchType"] == "FARGATE"
        [override] = task["overrides"]["containerOverrides"]
        env = {e["name"]: e["value"] for e in override["environment"]}
        assert env["RUN_MODE"] == "RUN_COLLECTION" and env["JOB_ID"] == job_id
        assert env["USERNAME"] == "ada@example.com"
        assert env["COLLECTION_OWNER"] == "plus_example_com/ada@example.com/things"
        assert env["SHARD_COUNT"] == "2"
        shards.add(env["SHARD_INDEX"])
        assert not SECRET_NAMES & set(env)
    assert shards == {"0", "1"}


def test_run_task_adds_tasks_to_a_job(deployed: dict[str, Any], aws_env: dict[str, str], client: Any) -> None:
    # Given a many-item job, when run-task.sh adds two tasks to it without waiting
    c = client
    before = set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"])
    job_id = "plus_example_com/ada@example.com/job.2222"
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--run-mode", "RUN_COLLECTION",
         "--job-id", job_id, "--username", "ada@example.com", "--add-tasks", "2", "--no-wait"], aws_env,
    )
    # Then two tasks start with the same environment and no shard settings
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("started task") + proc.stdout.count("started task") == 2
    arns = sorted(set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]) - before)
    assert len(arns) == 2
    envs = []
    for task in c("ecs").describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]:
        [override] = task["overrides"]["containerOverrides"]
        envs.append({e["name"]: e["value"] for e in override["environment"]})
    assert envs[0] == envs[1] and envs[0]["JOB_ID"] == job_id and "SHARD_INDEX" not in envs[0]
    # and a single run is refused before anything starts
    refused = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--run-mode", "RUN_SCRIPT",
         "--job-id", job_id, "--username", "ada@example.com", "--add-tasks", "2"], aws_env, check=False,
    )
    assert refused.returncode == 64 and "only runs over many items" in refused.stderr


def test_run_task_refuses_credentials(deployed: dict[str, Any], aws_env: dict[str, str], client: Any) -> None:
    c = client
    before = c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]
    proc = run_script(
        [
            "./run-task.sh",
            "--env-file",
            str(deployed["env_file"]),
            "--job-id",
            "h/u/job.2",
            "--username",
            "u",
            "--env",
            "SECRET_KEY=hunter2",
        ],
        aws_env,
        check=False,
    )
    assert proc.returncode == EX_USAGE  # not 1: that would mean the job FAILED
    assert "task role" in proc.stderr and "hunter2" not in proc.stderr + proc.stdout
    assert c("ecs").list_tasks(cluster=CLUSTER)["taskArns"] == before


def test_run_task_starts_register_actions_without_a_job(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    """REGISTER_ACTIONS (issue 12): no --job-id or --username; the task gets RUN_MODE and the --env
    variables, no JOB_ID/USERNAME."""
    c = client
    before = set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"])
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--run-mode", "REGISTER_ACTIONS",
         "--env", "PLUS_HOSTNAME=plus_example_com", "--no-wait"],
        aws_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [arn] = set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]) - before
    [task] = c("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    [override] = task["overrides"]["containerOverrides"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env == {"RUN_MODE": "REGISTER_ACTIONS", "PLUS_HOSTNAME": "plus_example_com"}


def test_run_task_redrive_creates_the_new_job_and_launches_it(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any, stack: Any, dao: Any
) -> None:
    """--redrive (issue 17 item 3): the job documents, receipts and key list on the real local
    stack (DynamoDB Local, SeaweedFS), RunTask on moto's ECS."""
    from tests.support.collections import new_owner, tag_script
    from tests.support.scripts import NAMESPACE, USERNAME, job_item

    c = client
    env = {**aws_env, **{k: v for k, v in stack.env.items() if k.startswith("AWS_")}}
    env["AWS_ENDPOINT_URL"] = aws_env["AWS_ENDPOINT_URL"]  # everything else: moto
    owner = new_owner()
    finished = job_item(tag_script(), collection_owner=owner, job_type="run_on_collection",
                        status="SUCCEEDED", outcome="PARTIAL")
    running = job_item(tag_script(), collection_owner=owner, job_type="run_on_collection", status="RUNNING")
    for job in (finished, running):
        dao.docs.put_new(job)
        stream = f"{NAMESPACE}stream-run-all.{job['object_id'].rsplit('job.', 1)[1]}"
        for n, ok in ((1, True), (2, False), (3, True), (2, True), (3, False)):  # latest: 3 failed
            dao.streams.append(stream, {"object_id": f"{owner}.item-{n}", "success": ok})
    before = set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"])
    base = ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--username", USERNAME, "--no-wait"]
    # a job still running: refused, nothing created or started
    refused = run_script([*base, "--redrive", running["object_id"]], env, check=False)
    assert refused.returncode == EX_USAGE and "has not finished (status RUNNING)" in refused.stderr
    assert "redriven_by" not in dao.docs.get(running["object_id"])
    assert set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]) == before
    # a finished one: the new job, linked both ways, started with RUN_JOB
    proc = run_script([*base, "--redrive", finished["object_id"]], env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new_id = dao.docs.get(finished["object_id"])["redriven_by"]
    assert f"new job {new_id}" in proc.stdout
    new = dao.docs.get(new_id)
    assert new["parent_job_id"] == finished["object_id"] and new["status"] == "INITIALIZING"
    assert json.loads(dao.blobs.get_bytes(new["item_keys_object"]))["keys"] == [f"{owner}.item-3"]
    [arn] = set(c("ecs").list_tasks(cluster=CLUSTER)["taskArns"]) - before
    [task] = c("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    [override] = task["overrides"]["containerOverrides"]
    task_env = {e["name"]: e["value"] for e in override["environment"]}
    assert task_env == {"RUN_MODE": "RUN_JOB", "JOB_ID": new_id, "USERNAME": USERNAME}
    # the same job again: already redriven
    again = run_script([*base, "--redrive", finished["object_id"]], env, check=False)
    assert again.returncode == EX_USAGE and f"already redriven by {new_id}" in again.stderr
    wrong = run_script([*base, "--redrive", finished["object_id"], "--job-id", new_id], env, check=False)
    assert wrong.returncode == EX_USAGE and "takes no --job-id" in wrong.stderr


def test_setup_creates_the_batch_resources(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    """AWS Batch (issue 17): a Fargate compute environment in the tasks' network, a queue on it, and
    a job definition that runs the worker as the task definition does."""
    c = client
    settings = deployed["settings"]
    names = ("BATCH_COMPUTE_ENVIRONMENT", "BATCH_JOB_QUEUE", "BATCH_JOB_DEFINITION")
    assert [settings[n] for n in names] == [f"{FAMILY}-fargate", FAMILY, FAMILY]
    assert settings["BATCH_MAX_VCPUS"] == "64"
    batch = c("batch")
    [ce] = batch.describe_compute_environments(
        computeEnvironments=[f"{FAMILY}-fargate"])["computeEnvironments"]
    assert (ce["type"], ce["state"]) == ("MANAGED", "ENABLED")
    resources = ce["computeResources"]
    assert (resources["type"], resources["maxvCpus"]) == ("FARGATE", 64)
    assert resources["subnets"] == settings["SUBNETS"].split(",")
    assert resources["securityGroupIds"] == settings["SECURITY_GROUPS"].split(",")
    assert "/aws-service-role/batch.amazonaws.com/" in ce["serviceRole"]  # the service-linked role
    [queue] = c("batch").describe_job_queues(jobQueues=[FAMILY])["jobQueues"]
    assert queue["state"] == "ENABLED"
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}]

    [jobdef] = batch.describe_job_definitions(jobDefinitionName=FAMILY, status="ACTIVE")["jobDefinitions"]
    td = latest_taskdef(c)
    [container] = td["containerDefinitions"]
    props = jobdef["containerProperties"]
    assert jobdef["platformCapabilities"] == ["FARGATE"] and jobdef["retryStrategy"] == {"attempts": 1}
    assert props["image"] == container["image"]
    assert (props["jobRoleArn"], props["executionRoleArn"]) == (td["taskRoleArn"], td["executionRoleArn"])
    assert props["environment"] == container["environment"]
    assert props["logConfiguration"] == container["logConfiguration"]
    assert sorted(props["resourceRequirements"], key=lambda r: r["type"]) == [
        {"type": "MEMORY", "value": "1024"}, {"type": "VCPU", "value": "0.5"}]  # --cpu 512, --memory 1024
    assert props["readonlyRootFilesystem"] is True and props["mountPoints"] == container["mountPoints"]
    assert props["ephemeralStorage"] == {"sizeInGiB": 50}
    assert props["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert not props.get("secrets")


def batch_env(aws_env: dict[str, str], fake: FakeBatch) -> dict[str, str]:
    """The scripts' environment with AWS Batch on the fake (everything else on moto), polling at once."""
    return {**aws_env, "AWS_ENDPOINT_URL_BATCH": fake.url, "BATCH_POLL_SECONDS": "0"}


@pytest.fixture
def fake_batch() -> Iterator[FakeBatch]:
    fake = FakeBatch()
    yield fake
    fake.close()


def test_run_task_batch_submits_one_array_job(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    """On moto: one SubmitJob, an array of N on the queue and job definition setup.sh made, each
    child with the worker's environment and no credentials."""
    c = client
    job_id = "plus_example_com/ada@example.com/job.3333"
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--run-mode", "RUN_COLLECTION",
         "--job-id", job_id, "--username", "ada@example.com", "--batch", "3", "--no-wait",
         "--env", "CONCURRENCY=16"], aws_env,
    )
    batch_id = proc.stdout.strip().splitlines()[-1]
    assert "submitted AWS Batch job" in proc.stdout
    [job] = c("batch").describe_jobs(jobs=[batch_id])["jobs"]
    assert job["arrayProperties"]["size"] == 3
    assert job["jobQueue"].endswith(f":job-queue/{FAMILY}")
    assert job["jobDefinition"].rsplit(":", 1)[0].endswith(f":job-definition/{FAMILY}")
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    names = ("RUN_MODE", "JOB_ID", "USERNAME", "SHARD_COUNT", "CONCURRENCY", "DYNAMO_TABLE")
    assert {k: env[k] for k in names} == {
        "RUN_MODE": "RUN_COLLECTION", "JOB_ID": job_id, "USERNAME": "ada@example.com", "SHARD_COUNT": "3",
        "CONCURRENCY": "16", "DYNAMO_TABLE": TABLE}  # the last from the job definition
    assert not SECRET_NAMES & set(env)


@pytest.mark.parametrize(("size", "outcomes", "expected"), [(3, {}, 0), (3, {1: 1, 2: 75}, 1), (1, {}, 0)])
def test_run_task_batch_waits_and_exits_with_the_childrens_code(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any, fake_batch: FakeBatch,
    size: int, outcomes: dict[int, int], expected: int,
) -> None:
    """Waits until the Batch job ends, shows each child's log stream, exits 0 when every child
    succeeded, else the first failed child's exit code (AWS Batch on a fake: moto's cannot run jobs)."""
    fake_batch.outcomes = outcomes
    fake_batch.polls_running = 2
    job_id = f"plus_example_com/ada@example.com/job.batch{size}{len(outcomes)}"
    fake_batch.log_stream_prefix = f"worker/default/{job_id.rsplit('.', 1)[1]}-"
    for i in range(size):
        put_log_line(client, f"{fake_batch.log_stream_prefix}job-1-{i}",
                     {"event": "job_finished", "job_id": job_id, "child": i})
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--job-id", job_id,
         "--username", "ada@example.com", "--batch", str(size)], batch_env(aws_env, fake_batch), check=False,
    )
    assert proc.returncode == expected, proc.stdout + proc.stderr
    [request] = fake_batch.submitted
    assert request["jobQueue"] == FAMILY and request["jobDefinition"] == FAMILY
    assert request.get("arrayProperties") == ({"size": size} if size > 1 else None)
    env = {e["name"]: e["value"] for e in request["containerOverrides"]["environment"]}
    assert env == {"RUN_MODE": "RUN_JOB", "JOB_ID": job_id, "USERNAME": "ada@example.com",
                   **({"SHARD_COUNT": str(size)} if size > 1 else {})}
    assert proc.stdout.count('"event": "job_finished"') == size  # each child's log stream
    assert proc.stdout.count("batch job job-1") == size
    assert "AWS Batch job job-1: RUNNING" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"run-task: exit code {expected}")


@pytest.mark.parametrize(("args", "message"), [
    (["--batch", "2", "--add-tasks", "2"], "takes no --add-tasks or --shards"),
    (["--batch", "2", "--shards", "2"], "takes no --add-tasks or --shards"),
    (["--batch", "2", "--run-mode", "RUN_SCRIPT"], "--batch is for runs over many items"),
    (["--batch", "0"], "--batch must be a positive integer"),
    (["--batch", "10001"], "--batch must be 1..10000"),
    (["--batch", "two"], "--batch must be a positive integer"),
])
def test_run_task_batch_refuses_bad_combinations(
    deployed: dict[str, Any], aws_env: dict[str, str], fake_batch: FakeBatch, args: list[str], message: str,
) -> None:
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--job-id", "h/u/job.9", "--username", "u",
         *args], batch_env(aws_env, fake_batch), check=False,
    )
    assert proc.returncode == EX_USAGE and message in proc.stderr, proc.stderr
    assert fake_batch.submitted == []


def test_run_task_batch_refuses_redrive(
    deployed: dict[str, Any], aws_env: dict[str, str], fake_batch: FakeBatch
) -> None:
    proc = run_script(
        ["./run-task.sh", "--env-file", str(deployed["env_file"]), "--redrive", "h/u/job.9",
         "--username", "u", "--batch", "2"], batch_env(aws_env, fake_batch), check=False,
    )
    assert proc.returncode == EX_USAGE and "--batch and --redrive exclude each other" in proc.stderr
    assert fake_batch.submitted == []


def test_show_logs_by_job_and_task(deployed: dict[str, Any], aws_env: dict[str, str], client: Any) -> None:
    c = client
    job_id = "plus_example_com/bob@example.com/job.2222"
    stream = "worker/worker/feedc0de"
    put_log_line(c, stream, {"event": "job_claimed", "job_id": job_id, "level": "info"})
    put_log_line(c, stream, {"event": "other", "job_id": "plus_example_com/eve@example.com/job.3"})
    put_log_line(c, stream, f"plain text mentioning {job_id}")
    env_file = str(deployed["env_file"])

    by_job = run_script(["./show_logs.sh", "--env-file", env_file, "--job", job_id, "--since", "1h"], aws_env)
    assert '"event": "job_claimed",\n' in by_job.stdout  # pretty-printed JSON
    assert f"plain text mentioning {job_id}" in by_job.stdout
    assert "eve@example.com" not in by_job.stdout

    raw = run_script(
        ["./show_logs.sh", "--env-file", env_file, "--task", "arn:aws:ecs:x:1:task/c/feedc0de", "--raw"],
        aws_env,
    )
    lines = raw.stdout.splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["event"] == "job_claimed"

    missing = run_script(["./show_logs.sh", "--env-file", env_file, "--task", "nope"], aws_env, check=False)
    assert missing.returncode == EX_AWS and "no logs for task" in missing.stderr
    bad = run_script(
        ["./show_logs.sh", "--env-file", env_file, "--job", job_id, "--since", "yesterday"],
        aws_env,
        check=False,
    )
    assert bad.returncode == EX_USAGE and "--since" in bad.stderr


def test_setup_updates_the_schedule_when_the_network_changes(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    c = client
    env_file = str(deployed["env_file"])
    try:
        out = run_script(["./setup.sh", "--yes", "--env-file", env_file, "--assign-public-ip", "DISABLED"],
                         aws_env).stdout
        # + the Batch job definition's network and the env file
        assert f"updated schedule {FAMILY}-sweeper" in out and "done: 3 change(s)" in out, out
        target = c("scheduler").get_schedule(Name=f"{FAMILY}-sweeper")["Target"]
        network = target["EcsParameters"]["NetworkConfiguration"]["awsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        [override] = json.loads(target["Input"])["containerOverrides"]
        env = {e["name"]: e["value"] for e in override["environment"]}
        assert env["ASSIGN_PUBLIC_IP"] == "DISABLED"  # the sweeper's relaunches use the same network
    finally:
        run_script(["./setup.sh", "--yes", "--env-file", env_file, "--assign-public-ip", "ENABLED"], aws_env)


def test_setup_applies_a_changed_setting(
    deployed: dict[str, Any], aws_env: dict[str, str], client: Any
) -> None:
    """Last in the module: it leaves a new task-definition revision behind."""
    c = client
    revisions = c("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    out = run_script(
        ["./setup.sh", "--yes", "--env-file", str(deployed["env_file"]), "--memory", "2048"], aws_env
    ).stdout
    # + the Batch job definition and the env file
    assert "registered task definition" in out and "done: 3 change(s)" in out
    after = c("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    assert len(after) == len(revisions) + 1
    assert latest_taskdef(c)["memory"] == "2048"
    jobdefs = c("batch").describe_job_definitions(jobDefinitionName=FAMILY, status="ACTIVE")["jobDefinitions"]
    latest = max(jobdefs, key=lambda d: d["revision"])
    assert {"type": "MEMORY", "value": "2048"} in latest["containerProperties"]["resourceRequirements"]
    assert "TASK_MEMORY=2048\n" in deployed["env_file"].read_text()
