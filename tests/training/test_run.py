"""``littlevision.training.run``: what ``train`` refuses before any work starts."""

from __future__ import annotations

import shutil

import pytest

from littlevision.errors import UserError
from littlevision.training.run import TrainConfig, check_class_names, train


@pytest.mark.parametrize("name", ["cats\r\nX-Injected: 1", "dogs\n", "tab\there", "nul\x00"])
def test_class_names_with_control_characters_are_refused(name):
    with pytest.raises(UserError, match="control characters"):
        check_class_names(["fine", name])


def test_ordinary_names_pass():
    check_class_names(["cats", "chat noir", "ñandú", "猫", "a-b_c.d"])


def test_train_refuses_a_class_folder_with_a_line_break(small_folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_folder / "cats", data / "cats\r\nX-Injected: 1")
    shutil.copytree(small_folder / "dogs", data / "dogs")
    with pytest.raises(UserError, match="control characters"):
        train(data, tmp_path / "run", TrainConfig())
    assert not (tmp_path / "run").exists()
