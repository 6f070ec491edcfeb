"""The worker's exception tree: one root, :class:`WorkerError`. Every error carries a message a user
can act on; errors raised by a lower layer are chained (``raise … from exc``).

The branches defined here are the ones several layers share. Errors that belong to one module are
defined where they are raised and derive from a branch here: ``ConditionFailed``
(:mod:`feaas.dao.docs`), ``BlobNotFound`` and ``TransferCancelled`` (:mod:`feaas.dao.blobs`),
``CodecError`` (:mod:`feaas.dao.codec`), ``ConversionError`` (:mod:`feaas.psee.values`),
``ActionFailed`` (:mod:`feaas.actions.base`), ``DocumentNotFound`` (:mod:`feaas.actions.context`),
``UnknownAction`` (:mod:`feaas.actions.registry`), ``DestinationRefused`` and ``HostNotFound``
(:mod:`feaas.netpolicy`), ``LaunchError`` (:mod:`feaas.launch`).

``Interrupted`` derives from ``BaseException`` so that ``except Exception`` in action code
cannot swallow a shutdown.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of the worker's own errors."""


class ConfigError(WorkerError):
    """Configuration is missing or invalid (exit 2)."""


class StorageUnreachable(WorkerError):
    """DynamoDB or S3 cannot be reached at start: refused or timed out (exit 69)."""


class JobNotClaimable(WorkerError):
    """The job does not exist, is finished, or is held by another live task (exit 3)."""


class LeaseLost(JobNotClaimable):
    """Another task took the job over; this task must stop without writing."""


class JobFailed(WorkerError):
    """The job must end FAILED with this message (exit 1)."""


class InvalidScript(JobFailed):
    """The script cannot run; the message lists every problem found."""


class Cancelled(JobFailed):
    """The user asked to cancel the job."""

    def __init__(self) -> None:
        super().__init__("Job was cancelled by user")


class DeadlineExceeded(JobFailed):
    """The job ran past its deadline."""


class NamespaceViolation(WorkerError):
    """A key, document id, stream id or prefix points outside the user's namespace."""


class StorageError(WorkerError):
    """DynamoDB or S3 refused or failed a request after retries."""


class NotFound(WorkerError):
    """One named thing is not there. ``name`` (also ``args[0]``) is its name; each subclass's
    ``template`` says what it is."""

    template = "{name!r} not found"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return self.template.format(name=self.name)


class InvalidValue(WorkerError, ValueError):
    """A value does not have the shape its destination needs (a stored document, a declared ptype)."""


class Interrupted(BaseException):
    """SIGTERM or SIGINT: stop, save, leave the job resumable (exit 75)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
