"""The ``geofm`` command as a whole: version, help without the heavy imports, one parser per subcommand."""

import subprocess
import sys

import pytest

import geofm_hf
import geofm_hf_cli
from geofm_hf.cli.geofm import build_parser


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        geofm_hf_cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"geofm_hf {geofm_hf.__version__}"


@pytest.mark.slow
def test_help_lists_every_subcommand_without_importing_torch():
    code = (
        "import sys, geofm_hf_cli\n"
        "try:\n    geofm_hf_cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY' if {'torch', 'transformers', 'geofm_hf'} & set(sys.modules) else 'LIGHT')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LIGHT")
    assert all(name in out for name in geofm_hf_cli.SUBCOMMANDS)


def test_an_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        geofm_hf_cli.main(["segment"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'segment'" in capsys.readouterr().err


def test_every_subcommand_module_builds_its_parser():
    parser = build_parser()
    for name in geofm_hf_cli.SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_training_booleans_are_flags_and_both_spellings_work():
    args = build_parser(["train"]).parse_args(
        ["train", "--hub-private", "--augmentation.hflip", "false", "--max_steps", "5", "--output-dir", "out"]
    )
    overrides = {key.split(":", 1)[1]: value for key, value in vars(args).items() if key.startswith("override:")}
    assert overrides == {"hub_private": True, "augmentation.hflip": False, "max_steps": 5, "output_dir": "out"}


@pytest.mark.parametrize(("command", "new", "old"), [("dataset", "--output-dir", "--output"), ("evaluate", "--output-dir", "--output")])
def test_output_dir_is_the_spelling_and_the_old_one_still_works(command, new, old):
    positional = {"dataset": ["--task", "fault", "--source", "synthetic"], "evaluate": ["model", "data"]}[command]
    parser = build_parser([command])
    assert parser.parse_args([command, *positional, new, "x"]).output == parser.parse_args([command, *positional, old, "x"]).output
