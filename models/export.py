"""scikit-learn estimators for the risk models and their conversion to ONNX.

* :func:`binary_onnx` — one classifier, input ``features`` float32 [n, k],
  outputs ``label`` and ``probabilities`` [n, 2] (no ZipMap).
* :class:`CoherentTargets` / :func:`multi_target_onnx` — several binary
  classifiers (one per target) in one graph with one output ``probabilities``
  [n, T]. The probabilities are made *coherent*: a target that another implies
  (reaching caution is implied by reaching danger; "within 60 min" by "within
  30 min") gets at least that target's probability, by a chain of ``Max``
  nodes that the scikit-learn side reproduces exactly.
* :class:`CameraModel` / :func:`camera_onnx` — a regressor (level as a share of
  bank-full) and a classifier (overtopping) on the same pixels: outputs
  ``level_ratio`` [n, 1] and ``probabilities`` [n, 2].

Graphs get fixed names and are built from skl2onnx conversions of each
estimator, prefixed and merged, so a training run always gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

OPSET = {"": 17, "ai.onnx.ml": 3}


def snap_thresholds_to_float32(model: Any) -> Any:
    """Makes a fitted histogram-gradient-boosting model split exactly as its ONNX graph will.

    scikit-learn compares inputs with float64 thresholds; ONNX Runtime with the
    thresholds cast to float32. For a float32 input ``x``, ``x <= t`` holds
    exactly when ``x <= t32`` with ``t32`` the largest float32 not above ``t``,
    so every threshold is replaced by that ``t32``. Predictions on float32 inputs
    (everything suibou feeds the models) do not change; the cast to float32 in
    the ONNX conversion becomes exact, and a threshold that the cast would have
    rounded onto an input value (pixels take only 256 values) can no longer send
    that input down the other branch. Returns the model, changed in place.
    """
    for iteration in getattr(model, "_predictors", []):
        for predictor in iteration:
            nodes = predictor.nodes
            t = nodes["num_threshold"]
            t32 = t.astype(np.float32)
            above = t32.astype(np.float64) > t
            t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
            inner = nodes["is_leaf"] == 0
            nodes["num_threshold"][inner] = t32[inner].astype(np.float64)
    return model


def _convert(model: Any, n_features: int, name: str) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    with warnings.catch_warnings():
        # skl2onnx passes booleans where onnx.helper now wants ints; harmless, and not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="onnx.helper")
        return convert_sklearn(model, initial_types=[("features", FloatTensorType([None, n_features]))], name=name,
                               options=options, target_opset=OPSET)


def binary_onnx(model: Any, n_features: int, graph_name: str) -> bytes:
    """A fitted binary classifier as ONNX bytes: input ``features``, outputs ``label``, ``probabilities``."""
    return _convert(model, n_features, graph_name).SerializeToString()


def _merge(parts: Sequence[tuple[str, Any]], n_features: int, graph_name: str, extra_nodes: list[Any],
           extra_initializers: list[Any], outputs: list[Any]) -> bytes:
    """Prefixes each converted graph, feeds all from one ``features`` input, adds the tail nodes."""
    import onnx
    from onnx import TensorProto, compose, helper

    nodes: list[Any] = []
    initializers = list(extra_initializers)
    opsets: dict[str, int] = {}
    ir_version = 8
    for prefix, proto in parts:
        prefixed = compose.add_prefix(proto, prefix)
        nodes.append(helper.make_node("Identity", ["features"], [f"{prefix}features"], name=f"{prefix}input"))
        nodes.extend(prefixed.graph.node)
        initializers.extend(prefixed.graph.initializer)
        for opset in prefixed.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        ir_version = proto.ir_version
    graph = helper.make_graph(
        nodes + extra_nodes, graph_name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])], outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name="suibou", ir_version=ir_version)
    onnx.checker.check_model(model)
    return model.SerializeToString()


# =========================================================================== multi-target


@dataclasses.dataclass
class CoherentTargets:
    """One fitted binary classifier per target, with coherent probabilities.

    Attributes:
        targets: Output column names, in order.
        estimators: ``target -> fitted classifier`` (with ``predict_proba``).
        implied_by: ``target -> targets that imply it``; its probability is
            raised to at least theirs. Every listed target must come earlier
            in :attr:`order`.
        order: The order in which the coherent values are computed.
    """

    targets: tuple[str, ...]
    estimators: Mapping[str, Any]
    implied_by: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]

    def raw_targets(self, x: np.ndarray) -> np.ndarray:
        """Each classifier's own probability, float64 (n, T)."""
        return np.stack([self.estimators[t].predict_proba(x)[:, 1] for t in self.targets], axis=1)

    def predict_targets(self, x: np.ndarray) -> np.ndarray:
        """Coherent probabilities, float64 (n, T), columns in :attr:`targets` order."""
        raw = self.raw_targets(x)
        column = {t: i for i, t in enumerate(self.targets)}
        done: dict[str, np.ndarray] = {}
        for t in self.order:
            value = raw[:, column[t]]
            for other in self.implied_by.get(t, ()):
                value = np.maximum(value, done[other])
            done[t] = value
        return np.stack([done[t] for t in self.targets], axis=1)


def coherence_for(thresholds: Sequence[str],
                  horizons: Sequence[int]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """``(implied_by, order)`` for targets ``{threshold}_{horizon}min``.

    Thresholds are given lowest first, horizons shortest first: reaching a higher
    threshold implies reaching a lower one, within a shorter time implies within
    a longer one.

    Examples:
        >>> implied, order = coherence_for(["caution", "danger"], [30, 60])
        >>> order
        ('danger_30min', 'danger_60min', 'caution_30min', 'caution_60min')
        >>> implied["caution_60min"]
        ('danger_60min', 'caution_30min')
    """
    implied: dict[str, tuple[str, ...]] = {}
    order = []
    for i in reversed(range(len(thresholds))):
        for k, h in enumerate(horizons):
            name = f"{thresholds[i]}_{h}min"
            deps = []
            if i + 1 < len(thresholds):
                deps.append(f"{thresholds[i + 1]}_{h}min")
            if k > 0:
                deps.append(f"{thresholds[i]}_{horizons[k - 1]}min")
            implied[name] = tuple(deps)
            order.append(name)
    return implied, tuple(order)


def multi_target_onnx(model: CoherentTargets, n_features: int, graph_name: str) -> bytes:
    """One graph: every target's classifier, the ``Max`` chain, output ``probabilities`` [n, T]."""
    from onnx import TensorProto, helper, numpy_helper

    parts, nodes = [], []
    for i, target in enumerate(model.targets):
        prefix = f"t{i}_"
        parts.append((prefix, _convert(model.estimators[target], n_features, f"{graph_name}_{target}")))
        nodes.append(helper.make_node("Gather", [f"{prefix}probabilities", "positive_column"], [f"raw_{target}"],
                                      axis=1, name=f"gather_{target}"))
    for target in model.order:
        inputs = [f"raw_{target}"] + [f"coherent_{other}" for other in model.implied_by.get(target, ())]
        op = "Max" if len(inputs) > 1 else "Identity"
        nodes.append(helper.make_node(op, inputs, [f"coherent_{target}"], name=f"coherent_{target}"))
    nodes.append(helper.make_node("Concat", [f"coherent_{t}" for t in model.targets], ["probabilities"], axis=1,
                                  name="concat_targets"))
    init = [numpy_helper.from_array(np.array([1], dtype=np.int64), "positive_column")]
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(model.targets)])
    return _merge(parts, n_features, graph_name, nodes, init, [output])


# =========================================================================== camera


@dataclasses.dataclass
class CameraModel:
    """Level (as a share of bank-full) and overtopping from the same image features."""

    regressor: Any
    classifier: Any

    def predict_level_ratio(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.regressor.predict(x), dtype=np.float64)

    def predict_overtopping(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(x)[:, 1], dtype=np.float64)


def camera_onnx(model: CameraModel, n_features: int, graph_name: str) -> bytes:
    """One graph, outputs ``level_ratio`` [n, 1] and ``probabilities`` [n, 2] (column 1: overtopping)."""
    from onnx import TensorProto, helper

    parts = [("level_", _convert(model.regressor, n_features, f"{graph_name}_level")),
             ("over_", _convert(model.classifier, n_features, f"{graph_name}_overtopping"))]
    regressor_out = parts[0][1].graph.output[0].name
    nodes = [
        helper.make_node("Identity", [f"level_{regressor_out}"], ["level_ratio"], name="level_out"),
        helper.make_node("Identity", ["over_probabilities"], ["probabilities"], name="overtopping_out"),
    ]
    outputs = [helper.make_tensor_value_info("level_ratio", TensorProto.FLOAT, [None, 1]),
               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])]
    return _merge(parts, n_features, graph_name, nodes, [], outputs)
