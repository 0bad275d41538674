"""Train the Keras twin of a ResNetV2 with ``model.fit`` on the digits data set.

What it shows: ``resnetv2.keras.create_model`` returns an ordinary ``keras.Model`` — compile
it, ``fit`` it, ``evaluate`` it, save it — and its weights move to the PyTorch model with
``resnetv2.keras.convert.keras_to_torch``.

Data: scikit-learn's 1,797 real 8×8 handwritten digits through ``resnetv2.data.load_data
("digits")`` (fixed stratified split: 1,438 train / 359 validation images), normalised with
the training split's mean/std. Runs offline on a CPU in seconds per epoch.

    KERAS_BACKEND=torch python examples/keras_fit_digits.py --epochs 15
    KERAS_BACKEND=torch python examples/keras_fit_digits.py --epochs 1 --depth 8 --save digits.keras

The Keras backend is whatever ``KERAS_BACKEND`` names (torch when unset); CI runs this file
on the torch backend (tests/keras/test_keras_example.py, one epoch).
"""

from __future__ import annotations

import argparse
import os
import sys


def load_digits_nhwc():
    """(x_train, y_train, x_val, y_val, class_names) as float32 NHWC arrays, normalised."""
    import numpy as np

    from resnetv2.data import load_data

    bundle = load_data("digits", progress=False)
    mean = np.asarray(bundle.mean, dtype="float32")
    std = np.asarray(bundle.std, dtype="float32")

    def prepare(images):
        # uint8 NCHW (PyTorch layout) -> float NHWC (Keras' channels_last).
        x = images.numpy().astype("float32").transpose(0, 2, 3, 1) / 255.0
        return (x - mean) / std

    return (
        prepare(bundle.train_images),
        bundle.train_labels.numpy(),
        prepare(bundle.val_images),
        bundle.val_labels.numpy(),
        bundle.class_names,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth (default 20)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="PATH.keras", help="save the trained model here")
    args = parser.parse_args(argv)

    import keras

    from resnetv2.keras import create_model

    keras.utils.set_random_seed(args.seed)
    x_train, y_train, x_val, y_val, class_names = load_digits_nhwc()
    height, width, channels = x_train.shape[1:]
    model = create_model(
        args.depth,
        in_channels=int(channels),
        num_classes=len(class_names),
        input_shape=(int(height), int(width), int(channels)),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        # The model returns logits, like the PyTorch twin.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(
        f"{model.name}: {model.count_params():,} parameters, {len(x_train)} train / "
        f"{len(x_val)} val images of {height}×{width}×{channels}, backend "
        f"{keras.backend.backend()}"
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        verbose=2,
    )
    val_loss, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
    print(f"validation accuracy {val_acc:.4f}, loss {val_loss:.4f}")
    if args.save:
        from resnetv2.keras.export import export_keras

        print(f"saved {export_keras(model, args.save)}")
    return {"history": history.history, "val_acc": float(val_acc), "val_loss": float(val_loss)}


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    main(sys.argv[1:])
