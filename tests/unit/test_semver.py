import pytest

from selfheal.core.semver import bump_patch, is_newer, is_semver, next_registry_version


@pytest.mark.parametrize("text", ["1.0.0", "0.0.1", "10.20.30", "1.0.0-rc.1", "1.0.0+build.7", "2.0.0-alpha.beta+x"])
def test_valid_versions(text):
    assert is_semver(text)


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "", "1.0.0.0", "1.0.0 "])
def test_invalid_versions(text):
    assert not is_semver(text)


def test_ordering_follows_semver():
    assert is_newer("1.0.1", "1.0.0")
    assert is_newer("1.10.0", "1.9.9")
    assert is_newer("1.0.0", "1.0.0-rc.1")
    assert is_newer("1.0.0-rc.10", "1.0.0-rc.2")
    assert not is_newer("1.0.0", "1.0.0")


def test_bump_patch_drops_prerelease():
    assert bump_patch("1.2.3") == "1.2.4"
    assert bump_patch("1.2.3-rc.1") == "1.2.4"


def test_registry_version_rules():
    assert next_registry_version(current=None, declared="1.0.0", content_changed=True) == "1.0.0"
    # A content change without a newer declared version bumps what the registry holds.
    assert next_registry_version(current="1.0.0", declared="1.0.0", content_changed=True) == "1.0.1"
    assert next_registry_version(current="1.0.3", declared="1.0.1", content_changed=True) == "1.0.4"
    # The author's newer version wins.
    assert next_registry_version(current="1.0.3", declared="2.0.0", content_changed=True) == "2.0.0"
    assert next_registry_version(current="1.0.3", declared="2.0.0", content_changed=False) == "2.0.0"
    # No content change, no newer declaration: nothing moves.
    assert next_registry_version(current="1.0.3", declared="1.0.0", content_changed=False) == "1.0.3"
