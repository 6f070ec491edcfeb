"""The worker's exit codes (SPEC §1.2, §8.4): what the task's exit code tells plus-engine and operators."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    SUCCEEDED = 0
    FAILED = 1
    CONFIG = 2
    NOT_CLAIMABLE = 3
    UNREACHABLE = 69
    INTERNAL = 70
    INTERRUPTED = 75

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.SUCCEEDED: "job SUCCEEDED",
    ExitCode.FAILED: "job FAILED and recorded (action failure, threshold, cancellation, timeout, bad input)",
    ExitCode.CONFIG: "configuration invalid (a missing table or bucket too); nothing written",
    ExitCode.NOT_CLAIMABLE:
        "job not claimable: not found, finished, or held by another live task; nothing changed",
    ExitCode.UNREACHABLE: "DynamoDB or S3 unreachable at start (within 10 s); nothing written",
    ExitCode.INTERNAL: "internal error that could not be recorded on the job",
    ExitCode.INTERRUPTED: "interrupted by SIGTERM/SIGINT; progress saved, job FAILED with resumable = true",
}
