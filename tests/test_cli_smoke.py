import subprocess
from pathlib import Path
import sys

from steerc.cli import main


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_help_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "steerc", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "steering compiler" in out.stdout


def test_closed_pipe_is_not_a_traceback():
    # `steerc explain ... | head`: the reader goes away long before steerc has written its
    # ~150 KB (more than a pipe buffer), so steerc's writes hit EPIPE.
    cmd = f"{sys.executable} -m steerc explain specs/examples/json_only.steer | head -c 1"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=root)
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
