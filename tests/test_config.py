from __future__ import annotations

from pathlib import Path

import pytest

from pillarbox import config


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    settings = config.load(None)
    assert settings.data_dir == Path("pillarbox-data")
    assert [str(a) for a in settings.smtp.listen] == ["127.0.0.1:2525"]
    assert [str(a) for a in settings.smtp.submission] == ["127.0.0.1:2587"]
    assert [str(a) for a in settings.smtp.submissions] == ["127.0.0.1:2465"]
    assert [str(a) for a in settings.pop3.listen] == ["127.0.0.1:1110"]
    assert [str(a) for a in settings.imap.listen_tls] == ["127.0.0.1:1993"]
    assert settings.smtp.max_message_size == 36700160
    assert settings.delivery.retry[0] == 300.0


def test_file_overrides_and_durations(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'hostname = "mx.example.org"\n[smtp]\nlisten = []\nrelay_networks = ["10.0.0.0/8"]\n'
        '[delivery]\nretry = ["1s", "2m"]\nmax_lifetime = "5d"\n'
    )
    settings = config.load(str(path))
    assert settings.hostname == "mx.example.org"
    assert settings.smtp.listen == ()
    assert settings.delivery.retry == (1.0, 120.0)
    assert settings.delivery.max_lifetime == 5 * 86400.0
    assert str(settings.smtp.relay_networks[0]) == "10.0.0.0/8"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[smtp]\nmax_recipients = "many"', "smtp.max_recipients"),
        ('[smtp]\nlisten = ["nohost"]', "smtp.listen[0]"),
        ("[smtp]\nbogus = 1", "smtp.bogus"),
        ('[smtp]\nrelay_networks = ["not-a-net"]', "smtp.relay_networks[0]"),
        ('[delivery]\nretry = ["soon"]', "delivery.retry[0]"),
        ('[smtp]\nbare_newline = "maybe"', "smtp.bare_newline"),
        ('[tls]\ncertificate = "c.pem"', "tls.key"),
        ("wat = 1", "wat"),
        ("[smtp]\nvrfy = 1", "smtp.vrfy"),
        ("[smtp]\nprocesses = 0", "smtp.processes"),
        ("[smtp]\nprocesses = 65", "smtp.processes"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as error:
        config.load(str(path))
    assert str(error.value).startswith(key + ":")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[smtp\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(str(path))
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(str(tmp_path / "absent.toml"))


def test_describe_prints_every_section() -> None:
    text = config.describe(config.Config(hostname="h.example"))
    for section in ("[store]", "[smtp]", "[pop3]", "[imap]", "[tls]", "[auth]", "[delivery]"):
        assert section in text
    assert "vrfy = false" in text
