from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeKey(_message.Message):
    __slots__ = ("organisation", "public_key", "certificate_pem", "signature", "fingerprint")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    public_key: bytes
    certificate_pem: str
    signature: bytes
    fingerprint: str
    def __init__(self, organisation: _Optional[str] = ..., public_key: _Optional[bytes] = ..., certificate_pem: _Optional[str] = ..., signature: _Optional[bytes] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class PublishNodeKeyRequest(_message.Message):
    __slots__ = ("project_id", "key")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    key: NodeKey
    def __init__(self, project_id: _Optional[str] = ..., key: _Optional[_Union[NodeKey, _Mapping]] = ...) -> None: ...

class PublishNodeKeyResponse(_message.Message):
    __slots__ = ("fingerprint",)
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    def __init__(self, fingerprint: _Optional[str] = ...) -> None: ...

class ListNodeKeysRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListNodeKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[NodeKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[NodeKey, _Mapping]]] = ...) -> None: ...

class SecretEnvelope(_message.Message):
    __slots__ = ("project_id", "epoch", "sender", "recipient", "enc", "ciphertext", "signature", "sender_certificate_pem")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    ENC_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SENDER_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    epoch: int
    sender: str
    recipient: str
    enc: bytes
    ciphertext: bytes
    signature: bytes
    sender_certificate_pem: str
    def __init__(self, project_id: _Optional[str] = ..., epoch: _Optional[int] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., enc: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., sender_certificate_pem: _Optional[str] = ...) -> None: ...

class PutEnvelopesRequest(_message.Message):
    __slots__ = ("project_id", "epoch", "envelopes")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    epoch: int
    envelopes: _containers.RepeatedCompositeFieldContainer[SecretEnvelope]
    def __init__(self, project_id: _Optional[str] = ..., epoch: _Optional[int] = ..., envelopes: _Optional[_Iterable[_Union[SecretEnvelope, _Mapping]]] = ...) -> None: ...

class PutEnvelopesResponse(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class GetEnvelopeRequest(_message.Message):
    __slots__ = ("project_id", "epoch")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    epoch: int
    def __init__(self, project_id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...
