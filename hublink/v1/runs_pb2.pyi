from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StartRunRequest(_message.Message):
    __slots__ = ("project_id", "threshold")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    threshold: float
    def __init__(self, project_id: _Optional[str] = ..., threshold: _Optional[float] = ...) -> None: ...

class GetRunStatusRequest(_message.Message):
    __slots__ = ("run_id", "project_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "project_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class RunStatus(_message.Message):
    __slots__ = ("run_id", "project_id", "state", "done", "total", "records", "entities", "linked_entities", "threshold", "seconds", "message")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    LINKED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    state: str
    done: int
    total: int
    records: int
    entities: int
    linked_entities: int
    threshold: float
    seconds: float
    message: str
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ..., state: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., records: _Optional[int] = ..., entities: _Optional[int] = ..., linked_entities: _Optional[int] = ..., threshold: _Optional[float] = ..., seconds: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...
