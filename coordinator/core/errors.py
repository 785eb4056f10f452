"""The coordinator's exception tree.

Every refusal the core makes is one of these, raised with a sentence a person
can act on and that holds no record data (no token, encoding or key). The rpc
layer maps each class to one gRPC status code in one table
(``coordinator.rpc.status``); the CLI prints the sentence.

    CoordinatorError
    ├── NotFound               unknown project, upload or run          → NOT_FOUND
    ├── NotAllowed             wrong role for the call                 → PERMISSION_DENIED
    │   └── NotAMember         organisation not in the project         → PERMISSION_DENIED
    ├── InvalidRequest         malformed request or records            → INVALID_ARGUMENT
    ├── SchemaMismatch         encodings made under another spec       → FAILED_PRECONDITION
    ├── NotReady               e.g. keys asked for before any run      → FAILED_PRECONDITION
    ├── AlreadyExists          second upload, conflicting chunk        → ALREADY_EXISTS
    ├── OverLimit              too many open uploads for one org       → RESOURCE_EXHAUSTED
    ├── Cancelled              a run stopped on request                → CANCELLED
    └── OverBudget             a run stopped itself: too many pairs    (recorded, not returned)
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Base of every refusal the coordinator's core makes."""


class NotFound(CoordinatorError):
    """The project, upload or run named does not exist (or is not the caller's to see)."""


class NotAllowed(CoordinatorError):
    """The caller's role may not make this call."""


class NotAMember(NotAllowed):
    """The caller's organisation does not take part in the project."""


class InvalidRequest(CoordinatorError):
    """The request or its records are malformed; nothing from it was stored."""


class SchemaMismatch(CoordinatorError):
    """The caller encoded under a different linkage specification than the project pins."""


class NotReady(CoordinatorError):
    """The call needs something that has not happened yet (a committed upload, a finished run)."""


class AlreadyExists(CoordinatorError):
    """The call would replace or contradict something already stored."""


class Cancelled(CoordinatorError):
    """A matching run was cancelled before it finished."""


class OverLimit(CoordinatorError):
    """The caller holds as much as the project allows of something (open uploads)."""


class OverBudget(CoordinatorError):
    """A matching run found more candidate pairs than its project allows and stopped itself.

    Raised inside the run's own thread, never to a caller: the run is recorded as failed
    with this sentence, which the status call and the audit log show.
    """
