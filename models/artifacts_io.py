"""Writing model artifacts (ONNX, metadata JSON, model card) and checking ONNX parity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_artifacts(out_dir: str | Path | None, name: str, version: str, onnx_bytes: bytes,
                    metadata: dict[str, Any], card: Any) -> tuple[Path, Path, Path]:
    """Writes ``{name}-{version}.onnx``, ``.json`` (with sha256 and file name added) and ``.md``.

    ``card`` is called with the final metadata and returns the model card text.
    """
    out = Path(out_dir) if out_dir is not None else ARTIFACTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{version}"
    onnx_path = out / f"{stem}.onnx"
    onnx_path.write_bytes(onnx_bytes)
    metadata = {
        "name": name, "version": version, "model_ref": f"{name}/{version}", "onnx_file": onnx_path.name,
        "sha256": sha256_bytes(onnx_bytes), "onnx_bytes": len(onnx_bytes), **metadata,
    }
    meta_path = out / f"{stem}.json"
    meta_path.write_text(json.dumps(metadata, ensure_ascii=False, indent=2, default=_plain) + "\n", encoding="utf-8")
    card_path = out / f"{stem}.md"
    card_path.write_text(card(metadata), encoding="utf-8")
    return onnx_path, meta_path, card_path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def onnx_outputs(onnx_bytes: bytes, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Runs a model straight from bytes (one thread), for parity checks during training."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, max(len(x), 1), 50_000):
        out.append(session.run(names, {"features": np.ascontiguousarray(x[start:start + 50_000], dtype=np.float32)}))
    return [np.concatenate([o[i] for o in out]) for i in range(len(names))]


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"
