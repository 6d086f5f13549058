"""Loading the emulator's TOML configuration (issue 3 'Users and security', spec §8, §9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.emulator.config import (
    DEFAULT_APP_CLIENT_ID,
    FaultSettings,
    default_config,
    load_emulator_config,
)
from crmsync.emulator.errors import EmulatorConfigError

FULL = """
tenant = "11111111-2222-3333-4444-555555555555"
seed = 9
token_lifetime_seconds = 120
request_limit = 50
request_window_seconds = 10
concurrency_limit = 4
delta_token_max_age_days = 0.5
max_page_size = 500
admin_key = "a-long-admin-key"
secured_attributes = ["lead.revenue", "contact.mobilephone"]

[change_tracking]
task = true
team = false

[faults]
error_rate = 0.25
latency_ms = 10

[[users]]
fullname = "Sync App"
kind = "application"
client_id = "AAAAAAAA-0000-0000-0000-000000000001"
client_secret = "top-secret-value"
can_impersonate = true
privileges = { "*" = ["read", "create", "write"], lead = ["read"] }
readable_secured = ["lead.revenue"]

[[users]]
fullname = "Dana Seller"
upn = "dana@sales.example"
password = "dana-pw-123"
mfa_required = true
privileges = { lead = ["read", "write"] }
updatable_secured = ["contact.mobilephone"]

[[plugin_rules]]
entity = "lead"
attribute = "telephone1"
kind = "regex"
pattern = "^[0-9 +()-]+$"
message = "Phone numbers may contain digits only."
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "emulator.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_none_gives_defaults_with_app_user_and_two_salespeople() -> None:
    """The default org: one application user with every privilege, two salespeople (§9)."""
    config = load_emulator_config(None)
    assert config == default_config()
    kinds = [user.kind for user in config.users]
    assert kinds == ["application", "user", "user"]
    app_user = config.user_by_client_id(DEFAULT_APP_CLIENT_ID.upper())
    assert app_user is not None and app_user.can("lead", "delete")
    seller = config.user_by_upn("ALEX.MORGAN@contoso.example")
    assert seller is not None
    assert seller.can("lead", "write") and not seller.can("lead", "delete")
    assert seller.can("systemuser", "read") and not seller.can("systemuser", "write")
    assert not seller.can_read_secured("lead", "revenue")
    assert config.user_by_id(seller.systemuserid.upper()) == seller
    assert (config.request_limit, config.request_window_seconds, config.concurrency_limit) == (
        6000,
        300.0,
        52,
    )
    assert config.is_tracked("lead") and not config.is_tracked("task")


def test_full_file_is_loaded(tmp_path: Path) -> None:
    """Every documented key is read; entity entries replace '*' for that entity."""
    config = load_emulator_config(write(tmp_path, FULL))
    assert config.tenant == "11111111-2222-3333-4444-555555555555"
    assert (config.request_limit, config.concurrency_limit, config.max_page_size) == (50, 4, 500)
    assert config.faults == FaultSettings(error_rate=0.25, latency_ms=10.0)
    assert config.is_tracked("task") and not config.is_tracked("team") and config.is_tracked("lead")
    app_user, dana = config.users
    assert app_user.can("account", "create") and not app_user.can("lead", "write")
    assert dana.can("lead", "write") and not dana.can("contact", "read")
    assert dana.can_update_secured("contact", "mobilephone")
    assert dana.mfa_required and not app_user.mfa_required
    assert app_user.can_impersonate and not dana.can_impersonate
    assert config.secret_for(dana).reveal() == "dana-pw-123"
    assert config.plugin_rules[0].violated_by({"telephone1": "call me"}, creating=True)
    assert not config.plugin_rules[0].violated_by({"telephone1": "+1 555 0100"}, creating=False)
    assert config.admin_key.reveal() == "a-long-admin-key"


def test_secrets_never_appear_in_reprs(tmp_path: Path) -> None:
    """Secrets stay out of reprs and error messages."""
    config = load_emulator_config(write(tmp_path, FULL))
    text = repr(config)
    assert "top-secret-value" not in text and "dana-pw-123" not in text
    assert "a-long-admin-key" not in text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tenant = [", "not valid TOML"),
        ("colour = 'blue'", "unknown key(s) in the top level: colour"),
        ("request_limit = 'many'", "request_limit must be a int"),
        ("request_limit = 0", "request_limit must be at least 1"),
        ("max_page_size = 9000", "cannot exceed 5000"),
        ("admin_key = 'short'", "at least 8"),
        ("org_url = 'https://org.crm.example/api/data'", "org_url must be an http(s) URL"),
        ("secured_attributes = ['revenue']", "'entity.attribute'"),
        ("[faults]\nerror_rate = 1.5", "between 0 and 1"),
        ("[faults]\nerror_status = 404", "error_status"),
        ("[faults]\nsurprise = 1", "surprise"),
        ("[[users]]\nfullname = 'X'\nkind = 'robot'", "kind must be"),
        ("[[users]]\nfullname = 'X'\nkind = 'application'", "client_id and client_secret"),
        ("[[users]]\nfullname = 'X'\nupn = 'nodomain'\npassword = 'p'", "upn (name@domain)"),
        (
            "[[users]]\nfullname = 'X'\nupn = 'x@y.z'\npassword = 'p'\nprivileges = {lead=['fly']}",
            "unknown privilege(s) fly",
        ),
        (
            "[[users]]\nfullname = 'X'\nupn = 'x@y.z'\npassword = 'p'\nreadable_secured = ['a.b']",
            "a.b is not listed in secured_attributes",
        ),
        (
            "[[users]]\nfullname = 'X'\nupn = 'x@y.z'\npassword = 'p'\n"
            "[[users]]\nfullname = 'Y'\nupn = 'X@y.z'\npassword = 'q'",
            "upn x@y.z appears more than once",
        ),
        (
            "[[plugin_rules]]\nentity='lead'\nattribute='a'\nkind='regex'\npattern='('\n"
            "message='m'",
            "not a valid regular expression",
        ),
        ("[[plugin_rules]]\nentity='lead'\nattribute='a'\nkind='maybe'\nmessage='m'", "kind"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    """Each mistake gives a EmulatorConfigError naming the file and the key."""
    path = write(tmp_path, text)
    with pytest.raises(EmulatorConfigError) as caught:
        load_emulator_config(path)
    assert fragment in caught.value.message
    assert str(path) in caught.value.message


@pytest.mark.parametrize(
    ("text", "key", "secret"),
    [
        (
            "[[users]]\nfullname = 'X'\nkind = 'application'\nclient_id = 'c'\n"
            "client_secret = ['hunter2-client-secret']",
            "users[0].client_secret",
            "hunter2-client-secret",
        ),
        (
            "[[users]]\nfullname = 'X'\nupn = 'x@y.z'\npassword = 271828182845",
            "users[0].password",
            "271828182845",
        ),
        ("admin_key = ['admin-key-in-a-list']", "admin_key", "admin-key-in-a-list"),
    ],
)
def test_a_wrongly_typed_secret_is_named_but_never_shown(
    tmp_path: Path, text: str, key: str, secret: str
) -> None:
    """Secrets stay out of error messages, also when they have the wrong type; the key is
    named so the mistake can still be found."""
    with pytest.raises(EmulatorConfigError) as caught:
        load_emulator_config(write(tmp_path, text))
    assert f"{key} must be a str" in caught.value.message
    assert secret not in caught.value.message
    assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_entra_object_id_can_be_given_and_must_be_a_unique_guid(tmp_path: Path) -> None:
    """A user's Entra object id (CallerObjectId) may be set per user; bad or shared ids fail."""
    given = "6F1B0C2E-3A4D-4E5F-8A9B-0C1D2E3F4A5B"
    user = f"[[users]]\nfullname = 'X'\nupn = 'x@y.z'\npassword = 'p'\nentra_object_id = '{given}'"
    config = load_emulator_config(write(tmp_path, user))
    assert config.users[0].entra_object_id == given.lower()
    assert config.user_by_object_id(given) == config.users[0]
    bad = user.replace(given, "not-a-guid")
    with pytest.raises(EmulatorConfigError, match=r"users\[0\]\.entra_object_id must be a GUID"):
        load_emulator_config(write(tmp_path, bad))
    twice = user + "\n" + user.replace("x@y.z", "w@y.z")
    with pytest.raises(EmulatorConfigError, match=r"entra_object_id .* appears more than once"):
        load_emulator_config(write(tmp_path, twice))


def test_org_url_is_read_as_an_origin(tmp_path: Path) -> None:
    """`org_url` (spec §1a: the environment URL) is kept as scheme://host[:port]."""
    config = load_emulator_config(write(tmp_path, "org_url = 'HTTPS://Contoso.crm.dynamics.com/'"))
    assert config.org_url == "https://contoso.crm.dynamics.com"
    assert default_config().org_url == ""


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a clear error, not a crash."""
    with pytest.raises(EmulatorConfigError, match="not found"):
        load_emulator_config(tmp_path / "absent.toml")


def test_secured_columns_without_users_keep_the_app_user_allowed(tmp_path: Path) -> None:
    """Changing secured_attributes alone still lets the sync user read and write them."""
    config = load_emulator_config(write(tmp_path, "secured_attributes = ['contact.jobtitle']"))
    app_user = config.users[0]
    assert app_user.can_read_secured("contact", "jobtitle")
    assert app_user.can_update_secured("contact", "jobtitle")
    assert not app_user.can_read_secured("lead", "revenue")
    assert not config.is_secured("lead", "revenue")
