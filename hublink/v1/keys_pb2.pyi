from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetKeyChangesRequest(_message.Message):
    __slots__ = ("project_id", "since")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    since: int
    def __init__(self, project_id: _Optional[str] = ..., since: _Optional[int] = ...) -> None: ...

class KeyChange(_message.Message):
    __slots__ = ("token", "old_key", "new_key", "change")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    OLD_KEY_FIELD_NUMBER: _ClassVar[int]
    NEW_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    token: str
    old_key: str
    new_key: str
    change: str
    def __init__(self, token: _Optional[str] = ..., old_key: _Optional[str] = ..., new_key: _Optional[str] = ..., change: _Optional[str] = ...) -> None: ...

class KeyChangeBatch(_message.Message):
    __slots__ = ("changes", "head")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[KeyChange]
    head: int
    def __init__(self, changes: _Optional[_Iterable[_Union[KeyChange, _Mapping]]] = ..., head: _Optional[int] = ...) -> None: ...

class GetLinkageKeysRequest(_message.Message):
    __slots__ = ("project_id", "batch_size")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    batch_size: int
    def __init__(self, project_id: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class LinkageKey(_message.Message):
    __slots__ = ("token", "key")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    token: str
    key: str
    def __init__(self, token: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class LinkageKeyBatch(_message.Message):
    __slots__ = ("run_id", "keys", "total")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    keys: _containers.RepeatedCompositeFieldContainer[LinkageKey]
    total: int
    def __init__(self, run_id: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[LinkageKey, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class WithdrawRequest(_message.Message):
    __slots__ = ("project_id", "tokens")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    tokens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project_id: _Optional[str] = ..., tokens: _Optional[_Iterable[str]] = ...) -> None: ...

class WithdrawResponse(_message.Message):
    __slots__ = ("withdrawn", "not_found")
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    withdrawn: int
    not_found: int
    def __init__(self, withdrawn: _Optional[int] = ..., not_found: _Optional[int] = ...) -> None: ...
