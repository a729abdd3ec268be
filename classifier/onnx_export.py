"""`python -m classifier.onnx_export MODEL_DIR OUT_DIR`: export a local BERT-style
sentence-transformers model to ONNX (fp32) and quantise it (int8, dynamic), offline.

Run in a child process by `classifier.onnx_embedder.ensure_onnx` so that torch is imported
only here. Files are written beside a temporary name and renamed, so concurrent starts
(several workers) never read a half-written graph; `export.json` (written last) records the
weights digest, versions and sizes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def export(model_dir: Path, out: Path) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    from classifier.onnx_embedder import EXPORT_VERSION, FILES, weights_digest

    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {k: {0: "batch", 1: "tokens"} for k in [*names, "last_hidden_state"]}
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / FILES["fp32"]
        int8 = Path(tmp) / FILES["int8"]
        with torch.no_grad():
            torch.onnx.export(
                Encoder(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                opset_version=17, dynamo=False,
            )
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        sizes = {k: (Path(tmp) / f).stat().st_size for k, f in FILES.items()}
        for f in FILES.values():
            os.replace(Path(tmp) / f, out / f)
    info = {
        "model_dir": str(model_dir),
        "weights_digest": weights_digest(model_dir),
        "export_version": EXPORT_VERSION,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": 17,
        "quantisation": "onnxruntime quantize_dynamic, QInt8 weights",
        "bytes": sizes,
        "seconds": round(time.perf_counter() - began, 2),
    }
    tmp_info = out / f".export.{os.getpid()}.json"
    tmp_info.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp_info, out / "export.json")
    return info


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m classifier.onnx_export MODEL_DIR OUT_DIR", file=sys.stderr)
        return 2
    info = export(Path(argv[0]), Path(argv[1]))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
