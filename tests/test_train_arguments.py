"""Training arguments: --config by path or by the name of one in the app's configs/ folder."""

import pytest

from seq_templates import apps_loader
from seq_templates import errors
from seq_templates import train_arguments


def _parse(tmp_path, *argv, configs_folder=None, task="sentiment"):
    sections = apps_loader.load_app(task).CONFIG_SECTIONS
    return train_arguments.parse([*map(str, argv), "--output-dir", str(tmp_path / "run")], sections,
                                 task, configs_folder=configs_folder).config


def _configs_folder(tmp_path, **files):
    """Writes ``configs/NAME.yaml`` for each keyword and ``mine.yaml`` beside it; returns the folder."""
    folder = tmp_path / "configs"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    (tmp_path / "mine.yaml").write_text("train:\n  epochs: 5\n")
    return folder


def test_config_by_name_path_and_precedence(tmp_path):
    folder = _configs_folder(tmp_path, small="train:\n  epochs: 3\nmodel:\n  units: 8\n")
    config = _parse(tmp_path, "--config", "small", configs_folder=folder)
    assert config["train"].epochs == 3 and config["model"].units == 8
    config = _parse(tmp_path, "--config", "small", "--config", tmp_path / "mine.yaml",
                    "--set", "model.units=16", configs_folder=folder)
    assert config["train"].epochs == 5 and config["model"].units == 16


def test_bundled_preset_is_found_by_name(tmp_path):
    folder = apps_loader.template_folder("ner") / "configs"
    config = _parse(tmp_path, "--config", "conll2003", configs_folder=folder, task="ner")
    assert config["data"].dataset == "conll2003" and config["model"].char_features


def test_unknown_config_name_lists_the_available_ones(tmp_path):
    folder = _configs_folder(tmp_path, small="train:\n  epochs: 3\n")
    with pytest.raises(errors.SeqTemplatesError, match="one of: small"):
        _parse(tmp_path, "--config", "large", configs_folder=folder)
    with pytest.raises(errors.SeqTemplatesError, match="does not exist"):
        _parse(tmp_path, "--config", tmp_path / "missing.yaml", configs_folder=folder)


def test_dataset_preset_sits_under_config_files_and_set(tmp_path):
    folder = _configs_folder(tmp_path, tuned="train:\n  epochs: 3\n  batch_size: 16\nmodel:\n  units: 8\n")
    config = _parse(tmp_path, "--dataset", "tuned", configs_folder=folder)
    assert (config["train"].epochs, config["model"].units, config["data"].dataset) == (3, 8, "tuned")
    config = _parse(tmp_path, "--dataset", "tuned", "--config", tmp_path / "mine.yaml",
                    "--set", "model.units=16", configs_folder=folder)
    assert (config["train"].epochs, config["train"].batch_size, config["model"].units) == (5, 16, 16)
    config = _parse(tmp_path, "--dataset", "tuned", "--no-preset", configs_folder=folder)
    assert config["train"].epochs != 3 and config["model"].units != 8
    config = _parse(tmp_path, "--dataset", "untuned", configs_folder=folder)
    assert config["data"].dataset == "untuned" and config["train"].epochs != 3


def test_dataset_with_a_bundled_preset_trains_with_it(tmp_path):
    folder = apps_loader.template_folder("ner") / "configs"
    with_preset = _parse(tmp_path, "--dataset", "conll2003", configs_folder=folder, task="ner")
    by_name = _parse(tmp_path, "--config", "conll2003", configs_folder=folder, task="ner")
    assert with_preset == by_name and with_preset["model"].char_features


def test_sst2_has_no_preset_since_the_auto_settings_beat_it(tmp_path):
    folder = apps_loader.template_folder("sentiment") / "configs"
    config = _parse(tmp_path, "--dataset", "sst2", configs_folder=folder)
    assert config["train"].auto_settings and not config["data"].char_features


def test_data_section_must_extend_the_base_data_config(tmp_path):
    import dataclasses

    from seq_templates import config as config_module

    @dataclasses.dataclass
    class BareData:
        path: str = ""

    with pytest.raises(errors.SeqTemplatesError, match="must extend seq_templates.config.DataConfig"):
        train_arguments.parse(["--output-dir", str(tmp_path / "run")],
                              {"data": BareData, "train": config_module.TrainConfig}, "bare")


def test_resume_refuses_changes_that_shape_the_checkpoint_and_records_safe_ones(tmp_path):
    from seq_templates import config as config_module

    sections = apps_loader.load_app("sentiment").CONFIG_SECTIONS
    partial = tmp_path / "run.partial"
    partial.mkdir()
    config_module.save(config_module.defaults(sections), partial / "config.yaml")
    resume = ["--output-dir", str(tmp_path / "run"), "--resume"]
    arguments = train_arguments.parse([*resume, "--set", "train.epochs=30", "--set", "train.verbose=0"],
                                      sections, "sentiment")
    assert arguments.config["train"].epochs == 30
    assert arguments.resumed_changes == ["train.epochs", "train.verbose"]
    assert train_arguments.parse(resume, sections, "sentiment").resumed_changes == []
    for change, refused in ((["--set", "model.units=16"], "model.units"),
                            (["--set", "data.max_tokens=50", "--set", "train.batch_size=8"],
                             "data.max_tokens, train.batch_size"),
                            (["--dataset", "sst2"], "data.dataset")):
        with pytest.raises(errors.SeqTemplatesError, match=f"--resume cannot change {refused}"):
            train_arguments.parse([*resume, *change], sections, "sentiment")
