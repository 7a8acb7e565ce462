"""Loads a trained model for scoring, refusing anything that does not check out.

:func:`load_scorer` is meant to run at start-up, once per worker: it fails
loudly, with a :class:`ModelLoadError` that says what is wrong, if the ONNX
file is missing, its sha256 differs from the metadata, the model's input does
not match the metadata's feature list (and the code's list for that model,
:data:`EXPECTED_FEATURES`), or its outputs do not match the metadata's targets.

Three kinds of model (metadata ``kind``):

* ``binary`` (``flood/1``, ``landslide/1``): :meth:`OnnxScorer.predict_proba`
  gives P(target) per row; :meth:`OnnxScorer.predict_targets` the same as (n, 1).
* ``multi_target`` (``flood/2``): :meth:`OnnxScorer.predict_targets` gives
  (n, T) probabilities in :attr:`OnnxScorer.targets` order;
  :meth:`OnnxScorer.predict_proba` gives the primary target's column, so the
  model drops in where a binary one was used.
* ``camera`` (``camera/1``): :meth:`OnnxScorer.predict_camera` gives the level
  (as a share of bank-full) and P(overtopping); see :mod:`models.camera`.

Every call is batched: pass all rows that are ready in one array.

Attribution (:meth:`OnnxScorer.attributions`) is occlusion against a baseline
row stored in the metadata (the median training row): for each feature,
``p(row) - p(row with that feature set to its baseline value)``. A positive
value means the feature, at its current value, raised the probability compared
with a typical quiet river. It is exact for what it measures (the model's
response to that one substitution) but ignores interactions between features,
so the numbers need not add up to ``p(row) - p(baseline)``.

Examples:
    >>> scorer = load_scorer("flood", "1")
    >>> scorer.model_ref, scorer.features[0]
    ('flood/1', 'stage_to_danger_m')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .camera import CAMERA_FEATURES, CAMERA_TARGETS
from .features import (
    FLOOD2_FEATURES,
    FLOOD2_TARGETS,
    FLOOD3_FEATURES,
    FLOOD3_TARGETS,
    FLOOD4_FEATURES,
    FLOOD5_FEATURES,
    FLOOD_FEATURES,
    LANDSLIDE_FEATURES,
)

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
#: Feature lists that a model (``name/version``) must take, in order.
EXPECTED_FEATURES: dict[str, tuple[str, ...]] = {
    "flood/1": FLOOD_FEATURES,
    "flood/2": FLOOD2_FEATURES,
    "flood/3": FLOOD3_FEATURES,
    "flood/4": FLOOD4_FEATURES,
    "flood/5": FLOOD5_FEATURES,
    "landslide/1": LANDSLIDE_FEATURES,
    "camera/1": CAMERA_FEATURES,
}
#: Output targets that a model must have, in order.
EXPECTED_TARGETS: dict[str, tuple[str, ...]] = {
    "flood/2": FLOOD2_TARGETS,
    "flood/3": FLOOD3_TARGETS,
    "flood/4": FLOOD3_TARGETS,
    "flood/5": FLOOD3_TARGETS,
    "camera/1": CAMERA_TARGETS,
}
KINDS = ("binary", "multi_target", "camera")


class ModelLoadError(RuntimeError):
    """A model artifact is missing, corrupt or does not match its metadata."""


def artifact_paths(name: str, version: str, artifacts_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``(onnx_path, metadata_path)`` of a model; the files need not exist."""
    base = Path(artifacts_dir) if artifacts_dir is not None else ARTIFACTS_DIR
    return base / f"{name}-{version}.onnx", base / f"{name}-{version}.json"


class OnnxScorer:
    """One ONNX Runtime session for one model, with its metadata.

    Attributes:
        name, version: The model, e.g. ``flood`` and ``1``.
        model_ref: ``"name/version"``, as written into risk scores.
        features: Input column names, in order.
        path: The ONNX file (for Beam's ``OnnxModelHandlerNumpy(model_uri=...)``).
        metadata: The parsed metadata JSON.
    """

    def __init__(self, path: Path, metadata: dict[str, Any], session: Any) -> None:
        self.path = path
        self.metadata = metadata
        self.name: str = metadata["name"]
        self.version: str = str(metadata["version"])
        self.features: tuple[str, ...] = tuple(metadata["features"])
        self.kind: str = metadata.get("kind", "binary")
        self.targets: tuple[str, ...] = tuple(metadata.get("targets") or ("target",))
        self.primary_target: str = metadata.get("primary_target", self.targets[-1] if self.kind == "camera"
                                                else self.targets[0])
        #: One sentence naming what :meth:`predict_proba` predicts (for ``RiskScore.target``).
        self.target: str = metadata.get("target", "")
        self._session = session
        self._input = metadata.get("input_name", "features")
        baseline = metadata.get("attribution", {}).get("baseline", {})
        self._baseline = np.array([baseline.get(f, np.nan) for f in self.features], dtype=np.float32)

    @property
    def model_ref(self) -> str:
        return f"{self.name}/{self.version}"

    def _rows(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != len(self.features):
            shown = self.features if len(self.features) <= 16 else f"({self.features[0]} ... {self.features[-1]})"
            raise ValueError(f"{self.model_ref} takes rows of {len(self.features)} features "
                             f"{shown}, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{self.model_ref}: inputs must be finite")
        return np.ascontiguousarray(x)

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(["probabilities"], {self._input: x})[0], dtype=np.float32)

    def predict_targets(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Probability of every target for each row, float32 (n, T), columns in :attr:`targets` order.

        For a binary model T = 1; for ``camera/1`` the one column is P(overtopping).

        Raises:
            ValueError: Wrong number of columns, or non-finite inputs.
        """
        x = self._rows(rows)
        width = len(self.targets) if self.kind == "multi_target" else 1
        if x.shape[0] == 0:
            return np.zeros((0, width), dtype=np.float32)
        p = self._probabilities(x)
        return p if self.kind == "multi_target" else p[:, 1:2]

    def predict_proba(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Probability of the (primary) target for each row.

        Args:
            rows: Shape (n, k) (or (k,) for one row), columns in :attr:`features` order.

        Returns:
            float32 array of shape (n,): P(target) for a binary model, the
            :attr:`primary_target` column for a multi-target one, P(overtopping)
            for the camera model.

        Raises:
            ValueError: Wrong number of columns, or non-finite inputs.
        """
        p = self.predict_targets(rows)
        column = self.targets.index(self.primary_target) if self.kind == "multi_target" else 0
        return np.ascontiguousarray(p[:, column])

    def target_probabilities(self, row: np.ndarray | Sequence[float]) -> dict[str, float]:
        """One row's probabilities by target name, e.g. ``{"caution_30min": 0.93, ...}``."""
        p = self.predict_targets(np.asarray(row, dtype=np.float32).reshape(1, -1))[0]
        names = self.targets if self.kind == "multi_target" else (self.primary_target,)
        return {name: float(v) for name, v in zip(names, p)}

    def predict_camera(self, rows: np.ndarray | Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
        """``camera/1``: ``(level_ratio, p_overtopping)``, each float32 (n,), for preprocessed frames.

        Raises:
            ValueError: Not a camera model, or malformed rows.
        """
        if self.kind != "camera":
            raise ValueError(f"{self.model_ref} is not a camera model")
        x = self._rows(rows)
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        ratio, p = self._session.run(["level_ratio", "probabilities"], {self._input: x})
        return np.asarray(ratio, dtype=np.float32).reshape(-1), np.asarray(p[:, 1], dtype=np.float32)

    def attributions(self, row: np.ndarray | Sequence[float], target: str | None = None) -> list[tuple[str, float]]:
        """Occlusion attribution of one row: ``(feature, p(row) - p(row with it at baseline))``.

        Sorted largest first. See the module docstring for what it means.
        ``target`` picks a column of a multi-target model (default: the primary one).

        Raises:
            ValueError: The metadata has no complete baseline, or the row is malformed.
        """
        return self.attributions_batch(np.asarray(row, dtype=np.float32).reshape(1, -1), target)[0]

    def attributions_batch(self, rows: np.ndarray, target: str | None = None) -> list[list[tuple[str, float]]]:
        """:meth:`attributions` of every row of ``rows`` (n, k), in one model call."""
        x = np.asarray(rows, dtype=np.float32).reshape(-1, len(self.features))
        if np.isnan(self._baseline).any():
            raise ValueError(f"{self.model_ref}: metadata has no attribution baseline for every feature")
        width = len(self.features) + 1
        # Each row, then the row with one feature at a time set to its baseline.
        batch = np.repeat(x, width, axis=0).reshape(len(x), width, -1)
        for j in range(len(self.features)):
            batch[:, j + 1, j] = self._baseline[j]
        flat = batch.reshape(len(x) * width, -1)
        if target is None or self.kind != "multi_target":
            p = self.predict_proba(flat)
        else:
            p = self.predict_targets(flat)[:, self.targets.index(target)]
        p = p.reshape(len(x), width)
        out = []
        for probabilities in p:
            deltas = [(f, float(probabilities[0] - probabilities[j + 1])) for j, f in enumerate(self.features)]
            out.append(sorted(deltas, key=lambda item: item[1], reverse=True))
        return out

    def contributions(self, row: np.ndarray | Sequence[float], top: int = 3, min_delta: float = 0.01,
                      target: str | None = None) -> list[str]:
        """Names of the features that raised this row's probability most (largest first).

        Only features whose occlusion attribution is at least ``min_delta`` are
        named, at most ``top`` of them; a quiet river gets an empty list.
        """
        return self.contributions_batch(np.asarray(row, dtype=np.float32).reshape(1, -1), top, min_delta, target)[0]

    def contributions_batch(self, rows: np.ndarray, top: int = 3, min_delta: float = 0.01,
                            target: str | None = None) -> list[list[str]]:
        """:meth:`contributions` of every row of ``rows`` (n, k), in one model call."""
        return [[name for name, delta in attributions if delta >= min_delta][:top]
                for attributions in self.attributions_batch(rows, target)]

    def __repr__(self) -> str:
        return f"OnnxScorer({self.model_ref}, path={str(self.path)!r})"


def load_scorer(name: str = "flood", version: str = "1", artifacts_dir: str | Path | None = None) -> OnnxScorer:
    """Loads and verifies a model; call it at start-up.

    Args:
        name: Model name (``"flood"``, ``"landslide"``, ``"camera"``).
        version: Model version (``"1"``, ``"2"``).
        artifacts_dir: Folder with ``{name}-{version}.onnx`` and ``.json``
            (default ``models/artifacts``).

    Returns:
        A ready scorer with one single-threaded ONNX Runtime session.

    Raises:
        ModelLoadError: A file is missing or unreadable, the sha256 does not
            match, or the model's inputs/outputs disagree with the metadata.
    """
    import onnxruntime as ort

    onnx_path, meta_path = artifact_paths(name, version, artifacts_dir)
    ref = f"{name}/{version}"
    if not meta_path.is_file():
        raise ModelLoadError(f"{ref}: metadata {meta_path} not found; run `python -m models.train`")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{ref}: metadata {meta_path} is unreadable: {error}") from None
    for field in ("name", "version", "features", "sha256"):
        if field not in metadata:
            raise ModelLoadError(f"{ref}: metadata {meta_path} lacks {field!r}")
    if metadata["name"] != name or str(metadata["version"]) != version:
        raise ModelLoadError(f"{ref}: metadata {meta_path} describes {metadata['name']}/{metadata['version']}")
    features = tuple(metadata["features"])
    expected = EXPECTED_FEATURES.get(ref)
    if expected is not None and features != expected:
        raise ModelLoadError(f"{ref}: metadata features {_short(features)} differ from the code's {_short(expected)}")
    kind = metadata.get("kind", "binary")
    if kind not in KINDS:
        raise ModelLoadError(f"{ref}: metadata kind {kind!r} is not one of {KINDS}")
    targets = tuple(metadata.get("targets") or ())
    expected_targets = EXPECTED_TARGETS.get(ref)
    if expected_targets is not None and targets != expected_targets:
        raise ModelLoadError(f"{ref}: metadata targets {targets} differ from the code's {expected_targets}")
    if kind == "multi_target" and metadata.get("primary_target") not in targets:
        raise ModelLoadError(f"{ref}: primary_target {metadata.get('primary_target')!r} is not one of {targets}")
    if not onnx_path.is_file():
        raise ModelLoadError(f"{ref}: model file {onnx_path} not found; run `python -m models.train`")
    data = onnx_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != metadata["sha256"]:
        raise ModelLoadError(f"{ref}: sha256 of {onnx_path} is {digest}, metadata says {metadata['sha256']}")

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelLoadError(f"{ref}: ONNX Runtime cannot load {onnx_path}: {error}") from None
    inputs = session.get_inputs()
    input_name = metadata.get("input_name", "features")
    if len(inputs) != 1 or inputs[0].name != input_name:
        raise ModelLoadError(f"{ref}: model inputs {[i.name for i in inputs]}, expected one named {input_name!r}")
    shape = inputs[0].shape
    if len(shape) != 2 or shape[1] != len(features):
        raise ModelLoadError(f"{ref}: model input shape {shape} does not take {len(features)} features {features}")
    if inputs[0].type != "tensor(float)":
        raise ModelLoadError(f"{ref}: model input type {inputs[0].type}, expected tensor(float)")
    outputs = {o.name: o for o in session.get_outputs()}
    if "probabilities" not in outputs:
        raise ModelLoadError(f"{ref}: model has no 'probabilities' output")
    width = len(targets) if kind == "multi_target" else 2
    shape = outputs["probabilities"].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != width):
        raise ModelLoadError(f"{ref}: 'probabilities' output has shape {shape}, expected [n, {width}]")
    if kind == "camera" and "level_ratio" not in outputs:
        raise ModelLoadError(f"{ref}: camera model has no 'level_ratio' output")
    return OnnxScorer(onnx_path, metadata, session)


def _short(names: Sequence[str]) -> str:
    names = tuple(names)
    return str(names) if len(names) <= 16 else f"({len(names)} names: {names[0]} ... {names[-1]})"


def load_scorers(refs: Sequence[str] = ("flood/4", "landslide/1", "camera/1"),
                 artifacts_dir: str | Path | None = None) -> dict[str, OnnxScorer]:
    """Loads several models at start-up (``"name/version"`` each); fails on the first bad one."""
    out = {}
    for ref in refs:
        name, _, version = ref.partition("/")
        out[ref] = load_scorer(name, version, artifacts_dir)
    return out
