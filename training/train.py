"""Training one CNN on a feature bank, and speaker-held-out cross-validation."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ser_live.config import EMOTIONS, FeatureConfig
from training.augment import spec_augment
from training.data import Bank, sample_windows

HEADS = {
    "gap": "global average pooling",
    "time_meanmax": "mean and max over time, frequency bands kept",
}


def describe_network(head: str) -> str:
    """The network in one line, for the model card."""
    return f"small log-mel CNN (strided 5x5 stem + 3 conv-BN-ReLU-pool blocks, {HEADS[head]}, softmax)"


@dataclass
class Recipe:
    """Everything that decides a trained model besides the data (written into the model card)."""

    epochs: int = 100  # 60 -> 100: speaker CV clip acc 0.672 -> 0.698, UAR 0.663 -> 0.686 (docs/training.md)
    batch_size: int = 64
    crops_per_clip: int = 2
    copies: int = 4  # augmented renderings of each clip (plus the clean one)
    clean_fraction: float = 0.25  # share of crops taken from the clean rendering
    peak_lr: float = 3e-3
    warmup_epochs: int = 3
    weight_decay: float = 2e-3
    label_smoothing: float = 0.05
    mixup_alpha: float = 0.3
    mixup_fraction: float = 0.5
    spec_augment: bool = True
    widths: tuple[int, ...] = (16, 32, 64, 96)
    dropout: float = 0.3
    head: str = "time_meanmax"
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        values = asdict(self)
        values["widths"] = list(self.widths)
        return values


def _epoch_data(bank: Bank, clip_items: list[np.ndarray], clip_labels: np.ndarray, cfg: FeatureConfig,
                recipe: Recipe, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_classes = len(EMOTIONS)
    chosen, labels = [], []
    for items, label in zip(clip_items, clip_labels, strict=True):
        for _ in range(recipe.crops_per_clip):
            if len(items) == 1 or rng.random() < recipe.clean_fraction:
                chosen.append(items[0])
            else:
                chosen.append(items[1 + rng.integers(len(items) - 1)])
            labels.append(label)
    order = rng.permutation(len(chosen))
    x = sample_windows(bank, np.asarray(chosen)[order], cfg, rng)
    y = np.eye(n_classes, dtype=np.float32)[np.asarray(labels)[order]]
    if recipe.spec_augment:
        spec_augment(x, rng)
    if recipe.mixup_alpha > 0:
        mixed = rng.random(len(x)) < recipe.mixup_fraction
        partner = rng.permutation(len(x))
        lam = rng.beta(recipe.mixup_alpha, recipe.mixup_alpha, len(x)).astype(np.float32)
        lam = np.where(mixed, np.maximum(lam, 1 - lam), 1.0).astype(np.float32)
        x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
        y = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
    return x[..., None], y


def train_model(bank: Bank, clip_ids: np.ndarray, clip_labels: np.ndarray, cfg: FeatureConfig, recipe: Recipe,
                log=print):
    """Train on the bank items of ``clip_ids`` (indices into the bank's clip list); returns a Keras model."""
    from training.net import build_model, configure_threads

    configure_threads(recipe.threads)
    import keras

    keras.utils.set_random_seed(recipe.seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(recipe.seed)
    by_clip: dict[int, list[int]] = {}
    for item, (ci, copy) in enumerate(zip(bank.item_clip, bank.item_copy, strict=True)):
        if copy <= recipe.copies:
            by_clip.setdefault(int(ci), []).append(item)
    clip_items = [np.asarray(sorted(by_clip[int(c)], key=lambda i: bank.item_copy[i])) for c in clip_ids]
    steps_per_epoch = -(-len(clip_ids) * recipe.crops_per_clip // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warmup = min(steps_per_epoch * recipe.warmup_epochs, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.peak_lr / 20, decay_steps=total - warmup, alpha=0.0,
        warmup_target=recipe.peak_lr, warmup_steps=warmup,
    )
    model = build_model(cfg.frames_per_window, cfg.n_mels, len(EMOTIONS), recipe.widths, recipe.dropout, recipe.head)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    start = time.time()
    for epoch in range(recipe.epochs):
        x, y = _epoch_data(bank, clip_items, clip_labels, cfg, recipe, rng)
        hist = model.fit(x, y, batch_size=recipe.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                         shuffle=False, verbose=0)
        if epoch % 10 == 9 or epoch == recipe.epochs - 1:
            log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {hist.history['loss'][-1]:.3f} "
                f"train acc {hist.history['accuracy'][-1]:.3f} ({time.time() - start:.0f} s)")
    return model
