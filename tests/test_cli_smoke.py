import subprocess
import sys

from steerc.cli import main


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_help_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "steerc", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "steering compiler" in out.stdout
