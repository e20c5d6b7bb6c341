"""SST-2 dev accuracy after every epoch of the reference SST-2 setup, for one seed.

A diagnostic beside ``benchmarks/sentiment.py``: it trains exactly what
``seq-templates train sentiment --dataset sst2 --config benchmarks/sst2_reference.yaml`` trains
(the template's preset until stop 36: same settings, seed and weight averaging restarted each
epoch) for ``--epochs`` epochs and scores the
GLUE dev split through the serving function after each one, so epoch 6 gives the
benchmark's figure and the others show how much it moves from epoch to epoch.

Usage:
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/sentiment_epoch_probe.py 42 [--set KEY=VALUE ...]
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from seq_templates import apps_loader  # noqa: E402
from seq_templates import config as config_module  # noqa: E402
from seq_templates import export  # noqa: E402
from seq_templates import training  # noqa: E402

SST2_CONFIG = pathlib.Path(__file__).resolve().parent / "sst2_reference.yaml"  # the preset until stop 36


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", type=int)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    arguments = parser.parse_args(argv)
    app = apps_loader.load_app("sentiment")
    config = config_module.resolve(app.CONFIG_SECTIONS, [SST2_CONFIG],
                                   [f"train.seed={arguments.seed}", f"train.epochs={arguments.epochs}",
                                    "train.verbose=0", *arguments.overrides])
    training.set_seed(arguments.seed)
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    dev_texts, dev_labels = raw["test"]

    class ScoreDev(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            _, endpoints, _ = app.build_serving(self.model, preprocessing, config)
            predicted = export.batch_predictor(endpoints["serving_default"])({"text": dev_texts})["label"]
            print(f"seed {arguments.seed} epoch {epoch + 1} dev accuracy "
                  f"{np.mean(predicted == np.array(dev_labels)):.4f}", flush=True)

    model.fit(app.make_dataset(raw["train"], preprocessing, config, shuffle=True),
              validation_data=app.make_dataset(raw["validation"], preprocessing, config),
              epochs=arguments.epochs, verbose=0,
              callbacks=[training.AveragedWeightsCallback(config["train"].ema_restart_each_epoch), ScoreDev()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
