from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetTimeSeriesRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class SeriesCell(_message.Message):
    __slots__ = ("label", "datasets", "value", "suppressed")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    label: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    value: int
    suppressed: bool
    def __init__(self, label: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., value: _Optional[int] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("run_id", "date", "cells")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    date: str
    cells: _containers.RepeatedCompositeFieldContainer[SeriesCell]
    def __init__(self, run_id: _Optional[str] = ..., date: _Optional[str] = ..., cells: _Optional[_Iterable[_Union[SeriesCell, _Mapping]]] = ...) -> None: ...

class TimeSeries(_message.Message):
    __slots__ = ("project_id", "releases", "disclosure_rule")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_RULE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    releases: _containers.RepeatedCompositeFieldContainer[Release]
    disclosure_rule: str
    def __init__(self, project_id: _Optional[str] = ..., releases: _Optional[_Iterable[_Union[Release, _Mapping]]] = ..., disclosure_rule: _Optional[str] = ...) -> None: ...

class GetCountsRequest(_message.Message):
    __slots__ = ("project_id", "by", "datasets_in", "datasets_out", "release")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    DATASETS_IN_FIELD_NUMBER: _ClassVar[int]
    DATASETS_OUT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    by: _containers.RepeatedScalarFieldContainer[str]
    datasets_in: _containers.RepeatedScalarFieldContainer[str]
    datasets_out: _containers.RepeatedScalarFieldContainer[str]
    release: str
    def __init__(self, project_id: _Optional[str] = ..., by: _Optional[_Iterable[str]] = ..., datasets_in: _Optional[_Iterable[str]] = ..., datasets_out: _Optional[_Iterable[str]] = ..., release: _Optional[str] = ...) -> None: ...

class GetOverlapRequest(_message.Message):
    __slots__ = ("project_id", "release")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    release: str
    def __init__(self, project_id: _Optional[str] = ..., release: _Optional[str] = ...) -> None: ...

class CountCell(_message.Message):
    __slots__ = ("datasets", "attributes", "value", "suppressed", "totalled", "reason")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    TOTALLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    value: int
    suppressed: bool
    totalled: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., value: _Optional[int] = ..., suppressed: _Optional[bool] = ..., totalled: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CountTable(_message.Message):
    __slots__ = ("project_id", "run_id", "cells", "disclosure_rule", "dimensions", "query")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_RULE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    run_id: str
    cells: _containers.RepeatedCompositeFieldContainer[CountCell]
    disclosure_rule: str
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    query: str
    def __init__(self, project_id: _Optional[str] = ..., run_id: _Optional[str] = ..., cells: _Optional[_Iterable[_Union[CountCell, _Mapping]]] = ..., disclosure_rule: _Optional[str] = ..., dimensions: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ...) -> None: ...
