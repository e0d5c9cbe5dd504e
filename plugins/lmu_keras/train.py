"""``lmu train`` in Keras: the psMNIST classifiers and the protocol's loop (what :func:`lmu.train.train` calls).

Design rule: what a Keras user would write (``keras.Sequential``, ``model.fit`` one epoch at a time with Adam and
``clipnorm``, Keras' own progress bar); the LMU layer is keras-lmu's own, built by ``lmu.build(spec,
backend="keras")``. Everything returned is NumPy: the best checkpoint as canonical LMU weights plus the head's
arrays.
"""

from __future__ import annotations

import platform
import time

import numpy as np

import lmu
import lmu.train

__all__ = ["fit", "build_classifier"]


def build_classifier(model, steps: int, seed: int = 0):
    """The model as ``keras.Sequential([Input, body, Dropout, Dense])``: body keras-lmu's layer or an LSTM."""
    import keras

    keras.utils.set_random_seed(seed)
    if model.spec is not None:
        body = lmu.build(model.spec, backend="keras", weights=lmu.init_weights(model.spec, seed), seq_len=steps)
    else:
        body = keras.layers.LSTM(model.lstm_units)
    return keras.Sequential([keras.Input((steps, 1)), body, keras.layers.Dropout(model.head_dropout),
                             keras.layers.Dense(model.classes)])


def _optimizer_variables(net) -> list:
    variables = net.optimizer.variables
    return list(variables() if callable(variables) else variables)  # a method in Keras 2's legacy optimizers


def fit(model, data, options, checkpoint=None):
    """Train ``model`` on ``data`` with ``options`` (see :func:`lmu.train.train`); with ``checkpoint`` (an
    :class:`lmu.checkpoints.Checkpoint`) save the weights, the optimizer's variables and the history after every
    epoch, and resume from it when it exists. Each epoch's shuffling is seeded from ``(seed, epoch)``, so a resumed
    run shuffles as one that was never stopped."""
    import keras
    import tensorflow as tf

    x_train, y_train = data["train"].x, data["train"].y
    steps = x_train.shape[1]
    net = build_classifier(model, steps, options.seed)
    net.compile(optimizer=keras.optimizers.Adam(options.lr, clipnorm=options.clip_norm),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history, best, best_weights, best_epoch = [], -1.0, None, 0
    if checkpoint is not None and checkpoint.exists():
        arrays, record = checkpoint.load()
        lmu.train.check_resumable(record, model, "keras", options)
        count = sum(k.startswith("model/") for k in arrays)
        net.set_weights([arrays[f"model/{i}"] for i in range(count)])
        best_weights = [arrays[f"best/{i}"] for i in range(count)]
        net.optimizer.build(net.trainable_variables)
        for i, variable in enumerate(_optimizer_variables(net)):
            variable.assign(arrays[f"optim/{i}"])
        history, best, best_epoch = record["history"], record["best_accuracy"], record["best_epoch"]
    for epoch in range(len(history) + 1, options.epochs + 1):
        if options.progress:
            print(f"epoch {epoch}/{options.epochs}", flush=True)
        keras.utils.set_random_seed(options.seed * 1_000_003 + epoch)  # this epoch's shuffling and dropout
        started = time.perf_counter()
        h = net.fit(x_train, y_train, batch_size=options.batch_size, epochs=1, shuffle=True,
                    verbose=1 if options.progress else 0)
        seconds = time.perf_counter() - started
        val_loss, val_acc = net.evaluate(data["validation"].x, data["validation"].y, batch_size=500, verbose=0)
        history.append(dict(epoch=epoch, train_loss=float(h.history["loss"][-1]),
                            train_accuracy=float(h.history["accuracy"][-1]), val_loss=float(val_loss),
                            val_accuracy=float(val_acc), seconds=seconds))
        if val_acc > best:
            best, best_epoch, best_weights = val_acc, epoch, [np.array(w) for w in net.get_weights()]
        if checkpoint is not None:
            arrays = {f"model/{i}": np.asarray(w) for i, w in enumerate(net.get_weights())}
            arrays.update({f"best/{i}": w for i, w in enumerate(best_weights)})
            arrays.update({f"optim/{i}": np.asarray(v) for i, v in enumerate(_optimizer_variables(net))})
            checkpoint.save(arrays, lmu.train.checkpoint_record(model, "keras", options, history, best_epoch, best))
    net.set_weights(best_weights)
    test_loss, test_acc = net.evaluate(data["test"].x, data["test"].y, batch_size=500, verbose=0)
    body, head = net.layers[0], net.layers[-1]
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    arrays = {"head/kernel": kernel, "head/bias": bias}
    weights = None
    if model.spec is not None:
        weights = lmu.get_weights(body)
    else:
        arrays.update({f"lstm/{i}": np.asarray(w) for i, w in enumerate(body.get_weights())})
    gpus = tf.config.list_physical_devices("GPU")
    hardware = f"GPU ({gpus[0].name})" if gpus else f"CPU ({platform.processor() or platform.machine()})"
    return dict(params=int(net.count_params()), history=history, best_epoch=best_epoch, test_loss=float(test_loss),
                test_accuracy=float(test_acc), hardware=hardware,
                framework=f"keras {keras.__version__}, tensorflow {tf.__version__}", weights=weights, arrays=arrays)
