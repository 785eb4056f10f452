from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ...) -> None: ...

class EncodingSpec(_message.Message):
    __slots__ = ("name", "bits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bits: int
    def __init__(self, name: _Optional[str] = ..., bits: _Optional[int] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("project_id", "purpose", "organisations", "schema_json", "encoding_sha256", "encodings", "released_attributes", "secret_epoch", "max_chunk_records", "node_key_fingerprints", "reference_date")
    class NodeKeyFingerprintsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ORGANISATIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    ENCODING_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    RELEASED_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SECRET_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_RECORDS_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FINGERPRINTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DATE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    purpose: str
    organisations: _containers.RepeatedScalarFieldContainer[str]
    schema_json: str
    encoding_sha256: str
    encodings: _containers.RepeatedCompositeFieldContainer[EncodingSpec]
    released_attributes: _containers.RepeatedScalarFieldContainer[str]
    secret_epoch: int
    max_chunk_records: int
    node_key_fingerprints: _containers.ScalarMap[str, str]
    reference_date: str
    def __init__(self, project_id: _Optional[str] = ..., purpose: _Optional[str] = ..., organisations: _Optional[_Iterable[str]] = ..., schema_json: _Optional[str] = ..., encoding_sha256: _Optional[str] = ..., encodings: _Optional[_Iterable[_Union[EncodingSpec, _Mapping]]] = ..., released_attributes: _Optional[_Iterable[str]] = ..., secret_epoch: _Optional[int] = ..., max_chunk_records: _Optional[int] = ..., node_key_fingerprints: _Optional[_Mapping[str, str]] = ..., reference_date: _Optional[str] = ...) -> None: ...
