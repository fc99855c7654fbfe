"""The small log-mel CNN (Keras). TensorFlow is imported here, never in ser_live."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

DEFAULT_WIDTHS = (16, 32, 64, 96)
INPUT_CLIP = 4.5  # normalized log-mel beyond +-4.5 is <0.01% of values; clipping keeps int8 input steps fine


class ClipInput(layers.Layer):
    """Saturate the normalized window, so float and int8 models see the same range."""

    def __init__(self, limit: float = INPUT_CLIP, **kwargs) -> None:
        super().__init__(**kwargs)
        self.limit = float(limit)

    def call(self, x):
        return keras.ops.clip(x, -self.limit, self.limit)

    def get_config(self) -> dict:
        return {**super().get_config(), "limit": self.limit}


def configure_threads(threads: int = 2) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialized


def build_model(frames: int, n_features: int, n_classes: int, widths: tuple[int, ...] = DEFAULT_WIDTHS,
                dropout: float = 0.3, head: str = "gap") -> keras.Model:
    """A strided 5x5 stem, then conv-BN-ReLU-pool blocks, a pooling head (``training.train.HEADS``), softmax.

    About 11 M multiply-adds and 80 k weights for the default widths: an int8 window runs in
    about a millisecond on one core.
    """
    inputs = keras.Input(shape=(frames, n_features, 1), name="logmel")
    x = ClipInput(name="clip")(inputs)
    x = layers.Conv2D(widths[0], 5, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for width in widths[1:]:
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    if head == "gap":
        x = layers.GlobalAveragePooling2D()(x)
    else:  # "time_meanmax": pool over time only (mean and max), keep the coarse frequency bands
        mean = layers.Flatten()(layers.AveragePooling2D(pool_size=(x.shape[1], 1))(x))
        peak = layers.Flatten()(layers.MaxPooling2D(pool_size=(x.shape[1], 1))(x))
        x = layers.Concatenate()([mean, peak])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="ser_cnn")
