from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartRunRequest(_message.Message):
    __slots__ = ("project_id", "threshold", "full")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    threshold: float
    full: bool
    def __init__(self, project_id: _Optional[str] = ..., threshold: _Optional[float] = ..., full: _Optional[bool] = ...) -> None: ...

class GetRunStatusRequest(_message.Message):
    __slots__ = ("run_id", "project_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "project_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class RunStatus(_message.Message):
    __slots__ = ("run_id", "project_id", "state", "done", "total", "records", "entities", "linked_entities", "threshold", "seconds", "message", "quality", "stage", "comparisons", "comparisons_per_second")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    LINKED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    state: str
    done: int
    total: int
    records: int
    entities: int
    linked_entities: int
    threshold: float
    seconds: float
    message: str
    quality: RunQuality
    stage: str
    comparisons: int
    comparisons_per_second: float
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ..., state: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., records: _Optional[int] = ..., entities: _Optional[int] = ..., linked_entities: _Optional[int] = ..., threshold: _Optional[float] = ..., seconds: _Optional[float] = ..., message: _Optional[str] = ..., quality: _Optional[_Union[RunQuality, _Mapping]] = ..., stage: _Optional[str] = ..., comparisons: _Optional[int] = ..., comparisons_per_second: _Optional[float] = ...) -> None: ...

class RunQuality(_message.Message):
    __slots__ = ("auto_threshold", "threshold_fixed", "estimated", "not_estimated_because", "threshold_estimated", "threshold_sd", "precision", "precision_sd", "recall", "recall_sd", "scores", "links_near_threshold", "records_with_several_candidates", "non_matches_anchored", "duplicates", "precision_low", "precision_high", "recall_low", "recall_high", "caveats")
    AUTO_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIXED_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    NOT_ESTIMATED_BECAUSE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SD_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_SD_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    RECALL_SD_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LINKS_NEAR_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECORDS_WITH_SEVERAL_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    NON_MATCHES_ANCHORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    PRECISION_LOW_FIELD_NUMBER: _ClassVar[int]
    PRECISION_HIGH_FIELD_NUMBER: _ClassVar[int]
    RECALL_LOW_FIELD_NUMBER: _ClassVar[int]
    RECALL_HIGH_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    auto_threshold: bool
    threshold_fixed: float
    estimated: bool
    not_estimated_because: str
    threshold_estimated: float
    threshold_sd: float
    precision: float
    precision_sd: float
    recall: float
    recall_sd: float
    scores: int
    links_near_threshold: int
    records_with_several_candidates: int
    non_matches_anchored: bool
    duplicates: DuplicateModel
    precision_low: float
    precision_high: float
    recall_low: float
    recall_high: float
    caveats: _containers.RepeatedCompositeFieldContainer[Caveat]
    def __init__(self, auto_threshold: _Optional[bool] = ..., threshold_fixed: _Optional[float] = ..., estimated: _Optional[bool] = ..., not_estimated_because: _Optional[str] = ..., threshold_estimated: _Optional[float] = ..., threshold_sd: _Optional[float] = ..., precision: _Optional[float] = ..., precision_sd: _Optional[float] = ..., recall: _Optional[float] = ..., recall_sd: _Optional[float] = ..., scores: _Optional[int] = ..., links_near_threshold: _Optional[int] = ..., records_with_several_candidates: _Optional[int] = ..., non_matches_anchored: _Optional[bool] = ..., duplicates: _Optional[_Union[DuplicateModel, _Mapping]] = ..., precision_low: _Optional[float] = ..., precision_high: _Optional[float] = ..., recall_low: _Optional[float] = ..., recall_high: _Optional[float] = ..., caveats: _Optional[_Iterable[_Union[Caveat, _Mapping]]] = ...) -> None: ...

class Caveat(_message.Message):
    __slots__ = ("code", "message", "untrusted")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNTRUSTED_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    untrusted: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., untrusted: _Optional[bool] = ...) -> None: ...

class DuplicateModel(_message.Message):
    __slots__ = ("groups", "weighed", "linked", "estimated_duplicate_pairs", "precision", "recall", "match_anchors", "relative_anchors", "weights", "apart", "precision_low", "precision_high", "recall_low", "recall_high")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    WEIGHED_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DUPLICATE_PAIRS_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    MATCH_ANCHORS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_ANCHORS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    APART_FIELD_NUMBER: _ClassVar[int]
    PRECISION_LOW_FIELD_NUMBER: _ClassVar[int]
    PRECISION_HIGH_FIELD_NUMBER: _ClassVar[int]
    RECALL_LOW_FIELD_NUMBER: _ClassVar[int]
    RECALL_HIGH_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedScalarFieldContainer[str]
    weighed: int
    linked: int
    estimated_duplicate_pairs: float
    precision: float
    recall: float
    match_anchors: int
    relative_anchors: int
    weights: _containers.RepeatedCompositeFieldContainer[GroupWeights]
    apart: int
    precision_low: float
    precision_high: float
    recall_low: float
    recall_high: float
    def __init__(self, groups: _Optional[_Iterable[str]] = ..., weighed: _Optional[int] = ..., linked: _Optional[int] = ..., estimated_duplicate_pairs: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., match_anchors: _Optional[int] = ..., relative_anchors: _Optional[int] = ..., weights: _Optional[_Iterable[_Union[GroupWeights, _Mapping]]] = ..., apart: _Optional[int] = ..., precision_low: _Optional[float] = ..., precision_high: _Optional[float] = ..., recall_low: _Optional[float] = ..., recall_high: _Optional[float] = ...) -> None: ...

class GroupWeights(_message.Message):
    __slots__ = ("group", "weights")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    group: str
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, group: _Optional[str] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...
