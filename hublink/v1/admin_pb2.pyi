from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetProjectStateRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class DatasetState(_message.Message):
    __slots__ = ("organisation", "upload_id", "records")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    upload_id: str
    records: int
    def __init__(self, organisation: _Optional[str] = ..., upload_id: _Optional[str] = ..., records: _Optional[int] = ...) -> None: ...

class ProjectState(_message.Message):
    __slots__ = ("project_id", "datasets", "latest_run_id", "state")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    LATEST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetState]
    latest_run_id: str
    state: str
    def __init__(self, project_id: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetState, _Mapping]]] = ..., latest_run_id: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class CloseProjectRequest(_message.Message):
    __slots__ = ("project_id", "reason")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    reason: str
    def __init__(self, project_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CloseProjectResponse(_message.Message):
    __slots__ = ("records_deleted",)
    RECORDS_DELETED_FIELD_NUMBER: _ClassVar[int]
    records_deleted: int
    def __init__(self, records_deleted: _Optional[int] = ...) -> None: ...
