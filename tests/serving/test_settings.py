"""ServeSettings is the one source of the service's options: every front end is built from it."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from littlevision.errors import UserError
from littlevision.serving.settings import MB, ServeSettings, cli_options, settings_from_cli


def test_the_command_line_defaults_are_the_settings_defaults():
    defaults = {o.name: o.default for o in cli_options()}
    assert defaults["max_body_mb"] == 20.0 and defaults["api_key_env"] is None
    assert settings_from_cli(defaults) == ServeSettings()
    assert settings_from_cli({}) == ServeSettings()


def test_every_option_fills_a_field_of_the_settings():
    fields = {f.name for f in dataclasses.fields(ServeSettings)}
    options = cli_options()
    assert {o.setting for o in options} <= fields
    assert len({o.name for o in options}) == len(options)


def test_command_line_values_become_settings(monkeypatch):
    monkeypatch.setenv("LV_TEST_KEY", "s3cret")
    s = settings_from_cli(
        {"max_batch": 8, "max_body_mb": 1.5, "api_key_env": "LV_TEST_KEY", "host": "ignored"}
    )
    assert s.max_batch == 8 and s.max_body_bytes == int(1.5 * MB) and s.api_key == "s3cret"
    monkeypatch.delenv("LV_TEST_KEY")
    with pytest.raises(UserError, match="environment variable LV_TEST_KEY"):
        settings_from_cli({"api_key_env": "LV_TEST_KEY"})
    with pytest.raises(UserError, match="max_queue >= 1"):
        settings_from_cli({"max_queue": 0})


def test_text_values_are_parsed_by_the_options_type():
    by_name = {o.name: o for o in cli_options()}
    assert by_name["max_batch"].parse("8") == 8
    assert by_name["batch_wait_ms"].parse("0.5") == 0.5
    with pytest.raises(UserError, match="max_batch to be a whole number"):
        by_name["max_batch"].parse("eight")


def test_both_command_lines_offer_every_option(capsys):
    from littlevision.cli import app
    from littlevision.serving.cli import main, serve_options

    with pytest.raises(SystemExit):
        main(["--help"])
    argparse_help = capsys.readouterr().out
    typer_help = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for option in serve_options():
        turned_off = option.type is bool and option.default  # a flag that is on by default
        flag = "--no-" + option.flag[2:] if turned_off else option.flag
        assert flag in argparse_help, flag
        assert flag in typer_help, flag
