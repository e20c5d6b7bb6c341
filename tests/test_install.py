"""`pip install .` (not editable) ships the bundled apps and dataset recipes."""

import os
import subprocess
import sys

from tests.conftest import REPOSITORY


def test_non_editable_install_finds_apps_and_recipes(tmp_path):
    target = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
         "--target", str(target), str(REPOSITORY)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (target / "seq_templates" / "apps" / "sentiment" / "sentiment_app.py").is_file()
    assert (target / "seq_templates" / "apps" / "ner" / "configs" / "conll2003.yaml").is_file()
    assert (target / "seq_templates" / "dataset_recipes" / "sst2.yaml").is_file()
    listed = subprocess.run([sys.executable, "-m", "seq_templates.cli", "list"], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert str(target) in listed.stdout and "sentiment" in listed.stdout and "sst2" in listed.stdout
