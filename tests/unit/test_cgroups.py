"""The out-of-memory trials' cgroups (tests/support/cgroups.py) over fake trees: v1, v2, and the
hybrid layouts; this host mounts the memory controller only under v1, so the v2 path runs here
against a small fake of cgroupfs (interface files appear in a new group once its parent enables
``memory`` for its children; a group holding processes cannot enable it: EBUSY)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from tests.support.cgroups import (
    LEAF,
    NoMemoryCgroup,
    create_memory_cgroup,
    oom_kills,
    own_memory_cgroup,
    peak_bytes,
)


def tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())  # as it is, not through the fake kernel's rules


def proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


@pytest.fixture
def cgroupfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake cgroup2 filesystem under ``tmp_path/fs``: what the kernel does on mkdir and on writes to
    ``cgroup.subtree_control`` and ``cgroup.procs``, as far as the trials rely on it."""
    root = tmp_path / "fs"
    real_mkdir, real_write = Path.mkdir, Path.write_text

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        real_mkdir(self, *args, **kwargs)
        control = self.parent / "cgroup.subtree_control"
        if root in self.parents and control.exists():
            real_write(self / "cgroup.procs", "")
            real_write(self / "cgroup.subtree_control", "")
            if "memory" in control.read_text().split():
                real_write(self / "cgroup.controllers", "memory")
                for name, text in (("memory.max", "max"), ("memory.swap.max", "max"),
                                   ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")):
                    real_write(self / name, text)

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if root not in self.parents:
            return real_write(self, data, *args, **kwargs)
        if self.name == "cgroup.subtree_control":
            if (self.parent / "cgroup.procs").read_text().split():  # the "no internal processes" rule
                raise OSError(errno.EBUSY, "Device or resource busy")
            return real_write(self, " ".join(sorted({*self.read_text().split(), data.lstrip("+")})))
        if self.name == "cgroup.procs":  # a move: out of whichever group held the pid
            for procs in root.rglob("cgroup.procs"):
                real_write(procs, " ".join(p for p in procs.read_text().split() if p != data))
            return real_write(self, " ".join([*self.read_text().split(), data]))
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "write_text", write_text)
    return root


def test_v1_when_the_memory_controller_is_mounted_under_v1(tmp_path):
    # this host: memory bound to a v1 hierarchy, a cgroup2 at unified/ offering hugetlb only
    tree(tmp_path / "fs", {"memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712",
                           "unified/cgroup.controllers": "hugetlb"})
    found = own_memory_cgroup(proc(tmp_path, "4:memory:/process_api/abc\n0::/\n"), tmp_path / "fs")
    assert found == (tmp_path / "fs/memory/process_api/abc", "v1")


def test_v2_at_the_root_and_on_a_hybrid_host_under_unified(tmp_path):
    tree(tmp_path / "fs", {"ecs/task/cgroup.controllers": "cpuset cpu io memory pids"})
    assert own_memory_cgroup(proc(tmp_path, "0::/ecs/task\n"), tmp_path / "fs") == (
        tmp_path / "fs/ecs/task", "v2")
    tree(tmp_path / "hybrid", {"unified/user/cgroup.controllers": "memory pids"})
    assert own_memory_cgroup(proc(tmp_path, "1:name=systemd:/user\n0::/user\n"), tmp_path / "hybrid") == (
        tmp_path / "hybrid/unified/user", "v2")


def test_no_memory_controller_anywhere_says_what_was_offered(tmp_path):
    tree(tmp_path / "fs", {"unified/cgroup.controllers": "hugetlb"})
    with pytest.raises(NoMemoryCgroup, match=r"unified/cgroup.controllers: hugetlb"):
        own_memory_cgroup(proc(tmp_path, "4:memory:/x\n0::/\n"), tmp_path / "fs")


def test_v1_group_gets_its_limit_and_swap_limit(tmp_path):
    parent = tmp_path / "fs/memory/task"
    tree(parent.parent, {"task/memory.limit_in_bytes": "max"})
    group = create_memory_cgroup(parent, "v1", 600 << 20)
    assert group.parent == parent and group.name.startswith("plus-oom-")
    assert (group / "memory.limit_in_bytes").read_text() == str(600 << 20)
    assert (group / "memory.memsw.limit_in_bytes").read_text() == str(600 << 20)


def test_v2_group_enables_memory_for_children_and_gets_memory_max_and_no_swap(cgroupfs):
    tree(cgroupfs, {"ecs/task/cgroup.controllers": "memory pids", "ecs/task/cgroup.subtree_control": "",
                    "ecs/task/cgroup.procs": ""})
    group = create_memory_cgroup(cgroupfs / "ecs/task", "v2", 600 << 20)
    assert "memory" in (cgroupfs / "ecs/task/cgroup.subtree_control").read_text().split()
    assert (group / "memory.max").read_text() == str(600 << 20)
    assert (group / "memory.swap.max").read_text() == "0"


def test_v2_group_holding_processes_moves_them_to_a_leaf_first(cgroupfs, tmp_path):
    # Given this process's v2 group, which holds processes (so the kernel refuses +memory: EBUSY)
    tree(cgroupfs, {"ci/job/cgroup.controllers": "memory", "ci/job/cgroup.subtree_control": "",
                    "ci/job/cgroup.procs": "101 102"})
    group = create_memory_cgroup(cgroupfs / "ci/job", "v2", 600 << 20)
    # Then its processes moved to the leaf, memory is enabled, and the trial's group is limited
    assert (cgroupfs / "ci/job/cgroup.procs").read_text().split() == []
    assert (cgroupfs / "ci/job" / LEAF / "cgroup.procs").read_text().split() == ["101", "102"]
    assert (group / "memory.max").read_text() == str(600 << 20)
    # and the next trial still finds the group itself as this process's own, not the leaf
    assert own_memory_cgroup(proc(tmp_path, f"0::/ci/job/{LEAF}\n"), cgroupfs)[0] == cgroupfs / "ci/job"


def test_v2_without_the_memory_controller_for_children_is_refused_with_the_reason(tmp_path):
    tree(tmp_path / "fs", {"job/cgroup.subtree_control": "memory"})  # a plain directory: no kernel behind
    with pytest.raises(NoMemoryCgroup, match="memory controller is not enabled"):
        create_memory_cgroup(tmp_path / "fs/job", "v2", 600 << 20)
    assert [p.name for p in (tmp_path / "fs/job").iterdir()] == ["cgroup.subtree_control"]


def test_oom_kills_are_read_from_v2_memory_events_and_v1_oom_control(tmp_path):
    tree(tmp_path, {"g2/memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
                    "g1/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"})
    assert oom_kills(tmp_path / "g2", "v2") == 2
    assert oom_kills(tmp_path / "g1", "v1") == 1
    assert oom_kills(tmp_path / "missing", "v2") == 0


def test_peak_use_is_read_from_v2_memory_peak_and_v1_max_usage(tmp_path):
    tree(tmp_path, {"g2/memory.peak": str(512 << 20), "g1/memory.max_usage_in_bytes": str(300 << 20)})
    assert peak_bytes(tmp_path / "g2", "v2") == 512 << 20
    assert peak_bytes(tmp_path / "g1", "v1") == 300 << 20
    assert peak_bytes(tmp_path / "missing", "v2") is None
