"""Full-integer int8 TFLite export with a representative dataset, plus the metadata JSON."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ser_live.adaptation import AdaptationPrior
from ser_live.config import EMOTIONS, FeatureConfig
from ser_live.model import EmotionClassifier, ModelMetadata, QuantParams

LICENCE = "CC BY-NC-SA 4.0 (weights derived from RAVDESS; non-commercial use only, share alike)"
CITATION = (
    "Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of Emotional Speech and Song "
    "(RAVDESS): A dynamic, multimodal set of facial and vocal expressions in North American English. "
    "PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391"
)

# Other corpora whose clips may shape shipped weights: (licence, citation). Their READMEs in
# ../shared/datasets say the same; a model card must name each one it was trained on.
CORPUS_TERMS: dict[str, tuple[str, str]] = {
    "tess": ("CC BY-NC-ND 4.0 (TESS: non-commercial)",
             "Pichora-Fuller, M. Kathleen; Dupuis, Kate (2020). Toronto emotional speech set (TESS). Borealis. "
             "https://doi.org/10.5683/SP2/E8H2MF"),
    "savee": ("SAVEE: free for research use from the University of Surrey (non-commercial research use)",
              "S. Haq and P.J.B. Jackson (2010). Multimodal Emotion Recognition. In W. Wang (ed), Machine Audition: "
              "Principles, Algorithms and Systems, IGI Global, pp. 398-423."),
}


def licence_and_citation(corpora: set[str]) -> tuple[str, str]:
    """The card's licence and citation lines for weights trained on ``corpora``."""
    others = [CORPUS_TERMS[c] for c in sorted(corpora) if c in CORPUS_TERMS]
    if not others:
        return LICENCE, CITATION
    licence = "; ".join([LICENCE] + [lic for lic, _ in others]) + ": non-commercial (research) use only"
    return licence, " | ".join([CITATION] + [cit for _, cit in others])


def _converter(model):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model)


def to_tflite(model, representative: np.ndarray | None) -> bytes:
    """Float32 TFLite when ``representative`` is None, else full-integer int8 (int8 in and out)."""
    import tensorflow as tf

    converter = _converter(model)
    if representative is not None:
        rep = representative.astype(np.float32)

        def gen():
            for i in range(len(rep)):
                yield [rep[i : i + 1, ..., None] if rep.ndim == 3 else rep[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with _quiet(), warnings.catch_warnings():
        # TF's converter warns about input statistics even when a representative dataset is given
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


@contextlib.contextmanager
def _quiet():
    """The converter prints pages of SavedModel details straight to fd 1/2; keep the CLI readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def tensor_quant(tflite_path: Path) -> tuple[QuantParams, QuantParams]:
    """Input and output quantization read from the converted model's own tensors."""
    from ser_live.model import _interpreter_class

    interpreter = _interpreter_class()(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    (si, zi) = interpreter.get_input_details()[0]["quantization"]
    (so, zo) = interpreter.get_output_details()[0]["quantization"]
    return QuantParams(float(si), int(zi)), QuantParams(float(so), int(zo))


def export(model, representative: np.ndarray, out_stem: Path, cfg: FeatureConfig, card: dict,
           prior: AdaptationPrior | None = None) -> EmotionClassifier:
    """Write ``<stem>.tflite`` (int8), ``<stem>.json`` and ``<stem>.float.tflite``; returns the loaded int8 model."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    name = out_stem.name
    int8_path = out_stem.with_name(name + ".tflite")
    float_path = out_stem.with_name(name + ".float.tflite")
    int8_path.write_bytes(to_tflite(model, representative))
    float_path.write_bytes(to_tflite(model, None))
    in_q, out_q = tensor_quant(int8_path)
    full_card = {
        "licence": LICENCE,
        "citation": CITATION,
        "int8_size_bytes": int8_path.stat().st_size,
        "parameters": int(model.count_params()),
        **card,
    }
    meta = ModelMetadata(name=name, labels=EMOTIONS, features=cfg, input_quant=in_q, output_quant=out_q, card=full_card,
                         adaptation=prior)
    meta.save(int8_path.with_suffix(".json"))
    return EmotionClassifier(int8_path)  # checks shapes, dtypes and quantization against the JSON
