from hublink.v1 import runs_pb2 as _runs_pb2
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
    __slots__ = ("project_id", "reason", "confirmation")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    reason: str
    confirmation: str
    def __init__(self, project_id: _Optional[str] = ..., reason: _Optional[str] = ..., confirmation: _Optional[str] = ...) -> None: ...

class CloseProjectResponse(_message.Message):
    __slots__ = ("records_deleted", "confirmation", "expires_at", "closed")
    RECORDS_DELETED_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    records_deleted: int
    confirmation: str
    expires_at: str
    closed: bool
    def __init__(self, records_deleted: _Optional[int] = ..., confirmation: _Optional[str] = ..., expires_at: _Optional[str] = ..., closed: _Optional[bool] = ...) -> None: ...

class GetQualityReportRequest(_message.Message):
    __slots__ = ("project_id", "run_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    run_id: str
    def __init__(self, project_id: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class ScoreBin(_message.Message):
    __slots__ = ("lower", "count", "suppressed")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    lower: float
    count: int
    suppressed: bool
    def __init__(self, lower: _Optional[float] = ..., count: _Optional[int] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("threshold", "precision", "recall")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    threshold: float
    precision: float
    recall: float
    def __init__(self, threshold: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ...) -> None: ...

class DatasetQuality(_message.Message):
    __slots__ = ("organisation", "records", "linked", "duplicates")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    records: int
    linked: int
    duplicates: int
    def __init__(self, organisation: _Optional[str] = ..., records: _Optional[int] = ..., linked: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("project_id", "run_id", "threshold_used", "quality", "bin_width", "bins", "curve", "datasets", "attributes")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_USED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    run_id: str
    threshold_used: float
    quality: _runs_pb2.RunQuality
    bin_width: float
    bins: _containers.RepeatedCompositeFieldContainer[ScoreBin]
    curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetQuality]
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeQuality]
    def __init__(self, project_id: _Optional[str] = ..., run_id: _Optional[str] = ..., threshold_used: _Optional[float] = ..., quality: _Optional[_Union[_runs_pb2.RunQuality, _Mapping]] = ..., bin_width: _Optional[float] = ..., bins: _Optional[_Iterable[_Union[ScoreBin, _Mapping]]] = ..., curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., datasets: _Optional[_Iterable[_Union[DatasetQuality, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[AttributeQuality, _Mapping]]] = ...) -> None: ...

class AttributeQuality(_message.Message):
    __slots__ = ("organisation", "attribute", "value", "records", "records_withheld", "linked", "linked_withheld", "duplicates", "duplicates_withheld")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    LINKED_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    attribute: str
    value: str
    records: int
    records_withheld: bool
    linked: int
    linked_withheld: bool
    duplicates: int
    duplicates_withheld: bool
    def __init__(self, organisation: _Optional[str] = ..., attribute: _Optional[str] = ..., value: _Optional[str] = ..., records: _Optional[int] = ..., records_withheld: _Optional[bool] = ..., linked: _Optional[int] = ..., linked_withheld: _Optional[bool] = ..., duplicates: _Optional[int] = ..., duplicates_withheld: _Optional[bool] = ...) -> None: ...
