from hublink.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

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

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("index", "tree_size")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("entry", "checkpoint", "proof")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    entry: AuditEntry
    checkpoint: _records_pb2.Checkpoint
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, entry: _Optional[_Union[AuditEntry, _Mapping]] = ..., checkpoint: _Optional[_Union[_records_pb2.Checkpoint, _Mapping]] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("checkpoint", "old_checkpoint", "proof")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    OLD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _records_pb2.Checkpoint
    old_checkpoint: _records_pb2.Checkpoint
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint: _Optional[_Union[_records_pb2.Checkpoint, _Mapping]] = ..., old_checkpoint: _Optional[_Union[_records_pb2.Checkpoint, _Mapping]] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("first_size", "last_size")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    last_size: int
    def __init__(self, first_size: _Optional[int] = ..., last_size: _Optional[int] = ...) -> None: ...
