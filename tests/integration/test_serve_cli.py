"""The `ladder serve` command line: --help, bad values (exit 2 naming the
setting), --print-config (secrets hidden), start-up failures."""

import os
import socket

import pytest

SECRET_HEX = "5f" * 32


def test_serve_help_exits_0_with_examples(ladder_cli):
    p = ladder_cli("serve", "--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "example" in out.lower(), out
    assert "ladder serve" in out
    for flag in ("--listen", "--data", "--max-body", "--header-timeout", "--print-config"):
        assert flag in out, flag


def test_top_level_help_and_unknown_command(ladder_cli):
    p = ladder_cli("--help")
    assert p.returncode == 0 and b"serve" in p.stdout
    p = ladder_cli("no-such-command")
    assert p.returncode == 2
    assert b"no-such-command" in p.stderr


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--max-body", "12q"),
        ("--threads", "abc"),
        ("--threads", "-1"),
        ("--listen", "nowhere"),
        ("--listen", "127.0.0.1:99999"),
        ("--header-timeout", "10"),  # a bare number is ambiguous
        ("--keepalive-timeout", "5 parsecs"),
        ("--argon2-mem", "1KiB"),  # under libsodium's minimum
    ],
)
def test_bad_flag_value_exits_2_naming_it(ladder_cli, tmp_path, flag, value):
    p = ladder_cli("serve", "--data", str(tmp_path), flag, value)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert flag.encode() in p.stderr, p.stderr
    # Nothing was served: the error is on stderr, stdout stays clean.
    assert b"listening" not in p.stdout.lower()


def test_unknown_flag_exits_2(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), "--no-such-flag", "1")
    assert p.returncode == 2
    assert b"--no-such-flag" in p.stderr


def test_missing_flag_value_exits_2(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), "--max-body")
    assert p.returncode == 2
    assert b"--max-body" in p.stderr


def test_bad_env_value_exits_2_naming_it(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), env={"LADDER_THREADS": "0x"})
    assert p.returncode == 2
    assert b"LADDER_THREADS" in p.stderr


def test_bad_token_keys_named_but_not_echoed(ladder_cli, tmp_path):
    bad = "k1:" + "zz" * 32
    p = ladder_cli("serve", "--data", str(tmp_path), "--token-keys", bad)
    assert p.returncode == 2
    assert p.stderr.startswith(b"ladder serve: --token-keys: "), p.stderr
    assert b"(kid 'k1'): the key is not hex" in p.stderr, p.stderr
    assert b"zz" * 32 not in p.stderr + p.stdout


def test_secret_split_from_its_flag_is_not_echoed(ladder_cli, tmp_path):
    # "--admin-token= s3cr3t" (a space too many): the stray argument is the
    # secret, and the message used to print it.
    p = ladder_cli("serve", "--data", str(tmp_path), "--admin-token=", "s3cr3t")
    assert p.returncode == 2, p.stderr
    assert p.stderr.decode() == (
        "ladder serve: unexpected argument after --admin-token (not shown: it may be the "
        "secret; write --admin-token=VALUE)\n"
    )


def test_print_config_hides_secrets(ladder_cli, tmp_path):
    p = ladder_cli(
        "serve",
        "--data",
        str(tmp_path),
        "--max-body",
        "1KiB",
        "--token-keys",
        "k1:" + SECRET_HEX,
        "--print-config",
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert SECRET_HEX not in out and SECRET_HEX not in p.stderr.decode()
    assert SECRET_HEX[:16] not in out
    lines = out.splitlines()
    # Effective values and where they came from, line by line (the header
    # names every source and gzip_min defaults to 1KiB, so a bare substring
    # would prove nothing).
    assert "token_keys = (set) ; flag" in lines, out
    assert "max_body = 1KiB ; flag" in lines, out
    assert "data = %s ; flag" % tmp_path in lines, out
    assert "max_fields = 100 ; default" in lines, out


def test_print_config_hides_secret_from_env(ladder_cli, tmp_path):
    p = ladder_cli(
        "serve",
        "--data",
        str(tmp_path),
        "--print-config",
        env={"LADDER_TOKEN_KEYS": "k1:" + SECRET_HEX, "LADDER_MAX_BODY": "2KiB"},
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert SECRET_HEX not in out and SECRET_HEX not in p.stderr.decode()
    lines = out.splitlines()
    assert "token_keys = (set) ; env" in lines, out
    assert "max_body = 2KiB ; env" in lines, out
    assert "data = %s ; flag" % tmp_path in lines, out


def test_print_config_does_not_start_or_create_key(ladder_cli, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    p = ladder_cli("serve", "--data", str(data), "--print-config")
    assert p.returncode == 0, p.stderr
    assert "data = %s ; flag" % data in p.stdout.decode().splitlines(), p.stdout
    assert list(data.iterdir()) == [], "--print-config wrote into the data dir"
    assert b"listening" not in p.stdout + p.stderr


def test_port_in_use_fails_with_message(ladder_cli, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = ladder_cli(
            "serve", "--data", str(tmp_path), "--listen", "127.0.0.1:%d" % port, timeout=30
        )
    finally:
        s.close()
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.decode() == (
        "ladder serve: listen: cannot listen on 127.0.0.1:%d: Address already in use"
        " (another process listens there)\n" % port
    )


@pytest.mark.parametrize(
    "where,message",
    [
        ("file", "ladder serve: data directory lock '{data}/ladder.lock': Not a directory\n"),
        ("file/sub", "ladder serve: data directory: cannot create '{data}': Not a directory\n"),
    ],
    ids=["a-file", "under-a-file"],
)
def test_unwritable_data_dir_fails(ladder_cli, tmp_path, where, message):
    # A regular file in place of the directory, or a path under one: no
    # user, root included, can use it as a directory. The listen address is
    # valid, so only the data dir can be what fails.
    (tmp_path / "file").write_text("x")
    data = tmp_path / where
    p = ladder_cli("serve", "--data", str(data), "--listen", "127.0.0.1:9", timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.decode() == message.format(data=data)
    assert b"listening" not in p.stdout
    assert (tmp_path / "file").read_text() == "x"
