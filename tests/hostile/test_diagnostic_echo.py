"""A spec names other files (`use`, `catalogue`, `schema`); a pull request can point them at
secrets (`use "/etc/shadow"`, a committed symlink `x.steer -> ~/.netrc`) and read the CI log.
Diagnostics quote lines and tokens only of files that are specs: for anything else, in every
output format (text, json, sarif, github), no byte of the file's content is printed."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.world import FIX, run_cli, write_spec

FORMATS = ("text", "json", "sarif", "github")
# each line starts with a word of its own: a syntax error would quote the first token
SECRET_LINES = ["svcQZXadmin:$6$S3CR3Tsalt$HASHEDPASSWORDxyz:19000:0:99999:7:::",
                "ghp_TOKENabc123def456", 'machineQZX api.example.com login bob password "Hunter2pw"',
                "exportQZX AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENG", "{not json: OPENSESAME}"]
SECRET_WORDS = ("S3CR3T", "HASHEDPASSWORD", "ghp_TOKEN", "Hunter2pw", "wJalrXUtnFEMI", "OPENSESAME",
                "svcQZX", "machineQZX", "exportQZX")


def _outputs(args: list[str]) -> list[str]:
    outs = []
    for fmt in FORMATS:
        rc, out, err = run_cli([*args, "--format", fmt])
        assert rc == 1, (fmt, out, err)
        outs.append(out + err)
    return outs


def _assert_no_secret(outs: list[str], words=SECRET_WORDS) -> None:
    for text in outs:
        leaked = [w for w in words if w in text]
        assert not leaked, (leaked, text[-3000:])


@pytest.fixture()
def secret(tmp_path):
    p = tmp_path / "credentials"
    p.write_text("\n".join(SECRET_LINES) + "\n")
    return p


def _spec(tmp_path, base_model, body):
    return write_spec(tmp_path / "s.steer", base_model, FIX / "sae_res", body)


def test_use_of_a_non_spec_file(tmp_path, base_model, secret):
    spec = _spec(tmp_path, base_model, f'use "{secret}"\nsuppress res2[1]\n')
    outs = _outputs(["check", str(spec)])
    _assert_no_secret(outs)
    assert "error[E018]" in outs[0] and "not a steer spec" in outs[0], outs[0]


def test_use_of_a_spec_named_symlink_to_a_secret(tmp_path, base_model, secret):
    os.symlink(secret, tmp_path / "common.steer")
    spec = _spec(tmp_path, base_model, 'use "common.steer"\nsuppress res2[1]\n')
    _assert_no_secret(_outputs(["check", str(spec)]))


def test_a_secret_given_as_the_spec(tmp_path, secret):
    os.symlink(secret, tmp_path / "x.steer")
    for path in (secret, tmp_path / "x.steer"):
        _assert_no_secret(_outputs(["check", str(path)]))
        rc, out, err = run_cli(["fmt", "--check", str(path)])
        _assert_no_secret([out + err])


@pytest.mark.parametrize("decl", ['catalogue "{p}"\n', 'enforce json schema "{p}"\n'],
                         ids=["catalogue", "schema"])
def test_data_files_named_by_a_spec_are_not_quoted(tmp_path, base_model, secret, decl):
    spec = _spec(tmp_path, base_model, decl.format(p=secret) + "suppress res2[1]\n")
    _assert_no_secret(_outputs(["check", str(spec)]))


def test_a_spec_with_a_syntax_error_still_shows_its_line(tmp_path, base_model):
    spec = _spec(tmp_path, base_model, "supress res2[1]\n")
    rc, _, err = run_cli(["check", str(spec)])
    assert rc == 1 and "error[E004]" in err and "| supress res2[1]" in err and "^" in err, err


_WORD = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=10, max_size=16)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.sampled_from(["", "key = ", "  ", "# ", '"', "model ", "{", "x:"]), _WORD,
                                st.sampled_from(["", ":::", '"', " 1", "}", "\t"])), min_size=1, max_size=6))
def test_no_token_of_a_used_non_spec_file_is_printed(tmp_path_factory, base_model, lines):
    """Property: whatever a non-spec file holds (random lines around random secret-like
    words), `check` quotes none of the words, in any format."""
    d = tmp_path_factory.mktemp("echo")
    secret = d / "notes.txt"
    secret.write_text("\n".join(a + w + b for a, w, b in lines))
    spec = _spec(d, base_model, f'use "{secret}"\nsuppress res2[1]\n')
    outs = []
    for fmt in FORMATS:
        rc, out, err = run_cli(["check", str(spec), "--format", fmt])
        outs.append(out + err)
    _assert_no_secret(outs, [w for _, w, _ in lines])
