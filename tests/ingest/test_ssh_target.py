"""Remote targets on the command line: which specs are SSH, and what each names."""

from __future__ import annotations

import pytest

from audittui.ingest.remote.target import Target, is_remote, parse_target


@pytest.mark.parametrize(
    ("spec", "host", "path", "user", "port"),
    [
        ("cp1:/var/log/kubernetes/audit/", "cp1", "/var/log/kubernetes/audit/", None, None),
        ("admin@cp-2.example.com:audit.log", "cp-2.example.com", "audit.log", "admin", None),
        ("[fd00::1]:/var/log/audit.log", "[fd00::1]", "/var/log/audit.log", None, None),
        ("ssh://ops@cp3:2222/var/log/a.log", "cp3", "/var/log/a.log", "ops", 2222),
        ("ssh://[fd00::2]/var/log/a%20b.log", "[fd00::2]", "/var/log/a b.log", None, None),
    ],
)
def test_remote_specs_name_their_host_path_user_and_port(spec, host, path, user, port):
    target = parse_target(spec)
    assert target == Target(host, path, user, port, spec)
    assert target.server == host.strip("[]")


def test_the_ssh_arguments_name_user_port_and_host_without_brackets():
    target = parse_target("ssh://ops@[fd00::2]:2222/a.log")
    assert target is not None
    assert target.destination() == ["-l", "ops", "-p", "2222", "fd00::2"]


@pytest.mark.parametrize(
    "spec", ["-", "audit.log", "./a:b", "/x/y:z", "clickhouse://localhost/db.t", "cp1:"]
)
def test_local_paths_other_schemes_and_an_empty_path_are_not_remote(spec):
    assert parse_target(spec) is None


def test_an_existing_local_file_stays_local_whatever_it_holds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cp1:audit.log").write_text("")
    assert parse_target("cp1:audit.log") is None
    assert parse_target("cp2:audit.log") is not None


@pytest.mark.parametrize("spec", ["-oProxyCommand:x", "-v:/var/log/a.log"])
def test_a_host_that_ssh_would_read_as_an_option_is_not_a_target(spec):
    assert parse_target(spec) is None


@pytest.mark.parametrize(
    "spec", ["ssh://cp1", "ssh://cp1/", "ssh://cp1:notaport/a.log", "ssh://-v/a.log"]
)
def test_a_malformed_ssh_url_is_an_error_and_still_counts_as_remote(spec):
    with pytest.raises(ValueError, match=r"ssh://"):
        parse_target(spec)
    assert is_remote(spec)
