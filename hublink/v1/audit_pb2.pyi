from hublink.v1 import records_pb2 as _records_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ListEntriesRequest(_message.Message):
    __slots__ = ("project_id", "organisation", "action", "since", "until")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    organisation: str
    action: str
    since: str
    until: str
    def __init__(self, project_id: _Optional[str] = ..., organisation: _Optional[str] = ..., action: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("index", "time", "actor_organisation", "actor_role", "action", "project_id", "details_json", "entry_hash")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ROLE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    index: int
    time: str
    actor_organisation: str
    actor_role: str
    action: str
    project_id: str
    details_json: str
    entry_hash: str
    def __init__(self, index: _Optional[int] = ..., time: _Optional[str] = ..., actor_organisation: _Optional[str] = ..., actor_role: _Optional[str] = ..., action: _Optional[str] = ..., project_id: _Optional[str] = ..., details_json: _Optional[str] = ..., entry_hash: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
