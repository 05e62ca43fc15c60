"""An onnxruntime session for a model file: CPU only, quiet, a bad file reported with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from appliance.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime as ort


def onnx_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """``model_path`` loaded on ``threads`` CPU threads (raises ``ModelError`` if onnxruntime cannot load it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ModelError(f"onnxruntime could not load {model_path} ({exc}); run `appliance-cli models verify`") from exc
