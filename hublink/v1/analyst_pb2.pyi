from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetOverlapRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class CountCell(_message.Message):
    __slots__ = ("datasets", "attributes", "value", "suppressed")
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
    datasets: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    value: int
    suppressed: bool
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., value: _Optional[int] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class CountTable(_message.Message):
    __slots__ = ("project_id", "run_id", "cells", "disclosure_rule")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_RULE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    run_id: str
    cells: _containers.RepeatedCompositeFieldContainer[CountCell]
    disclosure_rule: str
    def __init__(self, project_id: _Optional[str] = ..., run_id: _Optional[str] = ..., cells: _Optional[_Iterable[_Union[CountCell, _Mapping]]] = ..., disclosure_rule: _Optional[str] = ...) -> None: ...
