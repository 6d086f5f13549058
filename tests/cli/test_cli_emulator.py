"""``crmsync emulator``: what it prints and how it fails (issue 3 'Data', exit codes 0/1/2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from crmsync.cli.emulator import connection_details
from crmsync.emulator.config import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_SECRET, default_config
from crmsync.emulator.tls import ensure_tls_files

CRMSYNC = str(Path(sys.executable).parent / "crmsync")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRMSYNC, "emulator", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_details_name_everything_a_client_needs(tmp_path: Path) -> None:
    """Base URL, Web API root, authority, token URL, scope, credentials and the CA bundle."""
    config = default_config()
    tls = ensure_tls_files(tmp_path)
    details = connection_details(
        config, "https://127.0.0.1:4443", "org.db", tls, {"lead": 10, "contact": 10}
    )
    assert details["web_api_url"] == "https://127.0.0.1:4443/api/data/v9.2/"
    assert details["authority"] == f"https://127.0.0.1:4443/{config.tenant}"
    assert details["token_url"] == f"https://127.0.0.1:4443/{config.tenant}/oauth2/v2.0/token"
    assert details["scope"] == "https://127.0.0.1:4443/.default"
    assert (details["client_id"], details["client_secret"]) == (
        DEFAULT_APP_CLIENT_ID,
        DEFAULT_APP_SECRET,
    )
    assert [u["upn"] for u in details["users"]] == [
        "alex.morgan@contoso.example",
        "sam.patel@contoso.example",
    ]
    assert details["users"][0]["password"] == "alex-password-1"
    alex = config.user_by_upn("alex.morgan@contoso.example")
    assert alex is not None
    # CallerObjectId takes the Entra object id, so the printed details must give it (spec §0).
    assert details["users"][0]["entra_object_id"] == alex.entra_object_id
    assert details["ca_bundle"] == str(tls.ca_certificate)
    assert details["seeded"] == {"lead": 10, "contact": 10}


def test_plain_http_has_no_ca_bundle() -> None:
    details = connection_details(default_config(), "http://127.0.0.1:5580", ":memory:", None, {})
    assert details["ca_bundle"] is None
    assert details["base_url"] == "http://127.0.0.1:5580"


def test_bad_config_file_exits_1_with_a_message(tmp_path: Path) -> None:
    """A broken config is a clear one-line error and exit code 1, no traceback."""
    (tmp_path / "bad.toml").write_text("request_limit = 'lots'\n")
    result = run("--config", "bad.toml", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "request_limit must be a int" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run("--config", "absent.toml", cwd=tmp_path)
    assert missing.returncode == 1 and "not found" in missing.stderr
    no_dir = run("--port", "0", "--db", str(tmp_path / "absent" / "org.db"), cwd=tmp_path)
    assert no_dir.returncode == 1
    assert "cannot open the emulator database" in no_dir.stderr


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    """Binding a taken port fails cleanly."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr


def test_negative_lead_count_is_a_usage_error(tmp_path: Path) -> None:
    """Usage errors exit 2."""
    result = run("--seed", "-5", cwd=tmp_path)
    assert result.returncode == 2


def first_line(args: list[str], cwd: Path) -> dict[str, object]:
    """Start the emulator, read its JSON details line, stop it."""
    process = subprocess.Popen(
        [CRMSYNC, "emulator", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        return dict(json.loads(process.stdout.readline()))
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def test_a_database_is_seeded_once(tmp_path: Path) -> None:
    """Seeding happens for a new org only; a restart serves the same rows, port 0 is real."""
    args = ["--port", "0", "--json", "--db", "org.db", "--seed", "12"]
    first = first_line(args, tmp_path)
    assert first["seeded"] == {
        "lead": 12,
        "account": 2,
        "contact": 12,
        "opportunity": 1,
        "systemuser": 5,
        "team": 1,
    }
    assert str(first["base_url"]).startswith("http://127.0.0.1:")
    assert not str(first["base_url"]).endswith(":0")
    assert first["ca_bundle"] is None
    second = first_line(args, tmp_path)
    assert second["seeded"] == {}
