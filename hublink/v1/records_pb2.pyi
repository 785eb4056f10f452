from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encoding(_message.Message):
    __slots__ = ("name", "bits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bits: bytes
    def __init__(self, name: _Optional[str] = ..., bits: _Optional[bytes] = ...) -> None: ...

class Attribute(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class BlockingKey(_message.Message):
    __slots__ = ("scheme", "value")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    value: bytes
    def __init__(self, scheme: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class EncodedRecord(_message.Message):
    __slots__ = ("token", "encodings", "attributes", "blocking_keys")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_KEYS_FIELD_NUMBER: _ClassVar[int]
    token: str
    encodings: _containers.RepeatedCompositeFieldContainer[Encoding]
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    blocking_keys: _containers.RepeatedCompositeFieldContainer[BlockingKey]
    def __init__(self, token: _Optional[str] = ..., encodings: _Optional[_Iterable[_Union[Encoding, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., blocking_keys: _Optional[_Iterable[_Union[BlockingKey, _Mapping]]] = ...) -> None: ...

class ConsentRuleCount(_message.Message):
    __slots__ = ("rule", "count")
    RULE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    rule: str
    count: int
    def __init__(self, rule: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ConsentSummary(_message.Message):
    __slots__ = ("policy_sha256", "counts")
    POLICY_SHA256_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    policy_sha256: str
    counts: _containers.RepeatedCompositeFieldContainer[ConsentRuleCount]
    def __init__(self, policy_sha256: _Optional[str] = ..., counts: _Optional[_Iterable[_Union[ConsentRuleCount, _Mapping]]] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("note", "tree_size", "root_hash", "signed_at", "public_key")
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    note: str
    tree_size: int
    root_hash: bytes
    signed_at: str
    public_key: str
    def __init__(self, note: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., signed_at: _Optional[str] = ..., public_key: _Optional[str] = ...) -> None: ...
