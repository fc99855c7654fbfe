"""The small log-mel CNN (Keras). TensorFlow is imported here, never in ser_live."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

DEFAULT_WIDTHS = (16, 32, 64, 96)


def configure_threads(threads: int = 2) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialized


def build_model(frames: int, n_mels: int, n_classes: int, widths: tuple[int, ...] = DEFAULT_WIDTHS,
                dropout: float = 0.3) -> keras.Model:
    """A strided 5x5 stem, then conv-BN-ReLU-pool blocks, global average pooling, softmax.

    About 11 M multiply-adds and 80 k weights for the default widths: an int8 window runs in
    about a millisecond on one core.
    """
    inputs = keras.Input(shape=(frames, n_mels, 1), name="logmel")
    x = layers.Conv2D(widths[0], 5, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for width in widths[1:]:
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="ser_cnn")
