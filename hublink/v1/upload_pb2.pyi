from hublink.v1 import audit_pb2 as _audit_pb2
from hublink.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BeginUploadRequest(_message.Message):
    __slots__ = ("project_id", "upload_id", "encoding_sha256", "expected_records", "consent", "secret_epoch", "refresh")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    ENCODING_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RECORDS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    SECRET_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    upload_id: str
    encoding_sha256: str
    expected_records: int
    consent: _records_pb2.ConsentSummary
    secret_epoch: int
    refresh: bool
    def __init__(self, project_id: _Optional[str] = ..., upload_id: _Optional[str] = ..., encoding_sha256: _Optional[str] = ..., expected_records: _Optional[int] = ..., consent: _Optional[_Union[_records_pb2.ConsentSummary, _Mapping]] = ..., secret_epoch: _Optional[int] = ..., refresh: _Optional[bool] = ...) -> None: ...

class PutChunkRequest(_message.Message):
    __slots__ = ("upload_id", "chunk_index", "records")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    chunk_index: int
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.EncodedRecord]
    def __init__(self, upload_id: _Optional[str] = ..., chunk_index: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_records_pb2.EncodedRecord, _Mapping]]] = ...) -> None: ...

class ChunkAck(_message.Message):
    __slots__ = ("upload_id", "chunk_index", "duplicate", "records_received")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    chunk_index: int
    duplicate: bool
    records_received: int
    def __init__(self, upload_id: _Optional[str] = ..., chunk_index: _Optional[int] = ..., duplicate: _Optional[bool] = ..., records_received: _Optional[int] = ...) -> None: ...

class GetUploadStatusRequest(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class UploadStatus(_message.Message):
    __slots__ = ("upload_id", "project_id", "state", "received_chunks", "records_received")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    project_id: str
    state: str
    received_chunks: _containers.RepeatedScalarFieldContainer[int]
    records_received: int
    def __init__(self, upload_id: _Optional[str] = ..., project_id: _Optional[str] = ..., state: _Optional[str] = ..., received_chunks: _Optional[_Iterable[int]] = ..., records_received: _Optional[int] = ...) -> None: ...

class CommitUploadRequest(_message.Message):
    __slots__ = ("upload_id", "chunk_count", "record_count", "digest_sha256", "removed_tokens")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    REMOVED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    chunk_count: int
    record_count: int
    digest_sha256: str
    removed_tokens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, upload_id: _Optional[str] = ..., chunk_count: _Optional[int] = ..., record_count: _Optional[int] = ..., digest_sha256: _Optional[str] = ..., removed_tokens: _Optional[_Iterable[str]] = ...) -> None: ...

class UploadReceipt(_message.Message):
    __slots__ = ("upload_id", "project_id", "organisation", "record_count", "digest_sha256", "audit_index", "checkpoint", "entry", "inclusion_proof", "refresh")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    AUDIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    project_id: str
    organisation: str
    record_count: int
    digest_sha256: str
    audit_index: int
    checkpoint: _records_pb2.Checkpoint
    entry: _audit_pb2.AuditEntry
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    refresh: RefreshCounts
    def __init__(self, upload_id: _Optional[str] = ..., project_id: _Optional[str] = ..., organisation: _Optional[str] = ..., record_count: _Optional[int] = ..., digest_sha256: _Optional[str] = ..., audit_index: _Optional[int] = ..., checkpoint: _Optional[_Union[_records_pb2.Checkpoint, _Mapping]] = ..., entry: _Optional[_Union[_audit_pb2.AuditEntry, _Mapping]] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., refresh: _Optional[_Union[RefreshCounts, _Mapping]] = ...) -> None: ...

class RefreshCounts(_message.Message):
    __slots__ = ("added", "changed", "removed", "unchanged")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    added: int
    changed: int
    removed: int
    unchanged: int
    def __init__(self, added: _Optional[int] = ..., changed: _Optional[int] = ..., removed: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...
