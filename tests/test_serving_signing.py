"""Signed manifests: a version that is unsigned, badly signed, symlinked, carries extra files
or changes after its check is never served; what is loaded is the verified copy; a refused
version is retried when its folder changes; key creation, rotation and the Pusher's key."""
import json
import logging
import os
import shutil
import stat

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.serving_pusher import versions
from ml.serving import manifest, signing_keys
from ml.serving.manifest import ManifestError
from tests.serving_fixtures import fake_version_dir


@pytest.fixture
def keys(tmp_path):
    private_path, public_path = manifest.generate_signing_key(tmp_path / "keys")
    return manifest.load_private_key(private_path), manifest.load_public_keys(public_path), \
        private_path, public_path


def test_a_signed_version_verifies_into_a_read_only_copy_of_the_checked_bytes(tmp_path, keys):
    private_key, public_keys, _, _ = keys
    version = fake_version_dir(tmp_path / "serving")
    manifest.sign_manifest(version, private_key, version=3)
    verified = manifest.verify_signed_version(version, public_keys, tmp_path / "staging", 3)
    try:
        assert verified.key_id == manifest.key_id(public_keys[0])
        assert sorted(verified.files) == ["assets/feature_defaults.json", "saved_model.pb",
                                          "variables/variables.index"]
        # Changing the served folder after the check does not change what is loaded.
        (version / "saved_model.pb").write_bytes(b"evil")
        assert (verified.path / "saved_model.pb").read_bytes() == b"graph"
        assert not (verified.path / manifest.MANIFEST_NAME).exists()
        assert not os.stat(verified.path / "saved_model.pb").st_mode & stat.S_IWUSR
        assert verified.path.parent == tmp_path / "staging"
    finally:
        manifest.remove_verified_copy(verified.path)
    assert not verified.path.exists()


def _refusal(version, public_keys, version_number=3):
    with pytest.raises(ManifestError) as refused:
        manifest.verify_signed_version(version, public_keys, version=version_number)
    return str(refused.value)


def test_unsigned_and_resigned_by_another_key_are_refused(tmp_path, keys):
    private_key, public_keys, _, _ = keys
    version = fake_version_dir(tmp_path)
    manifest.write_manifest(version)
    assert "is not signed" in _refusal(version, public_keys)
    other, _ = manifest.generate_signing_key(tmp_path / "other")
    manifest.sign_manifest(version, other, version=3)
    assert "does not verify with any configured public key" in _refusal(version, public_keys)


def test_tampering_with_files_or_the_manifest_is_refused(tmp_path, keys):
    private_key, public_keys, _, _ = keys
    version = fake_version_dir(tmp_path)
    manifest.sign_manifest(version, private_key, version=3)
    (version / "saved_model.pb").write_bytes(b"evil")
    assert "digest mismatch for saved_model.pb" in _refusal(version, public_keys)
    # Rewriting the digests to match breaks the signature.
    content = json.loads((version / manifest.MANIFEST_NAME).read_text())
    content["files"] = manifest.compute_digests(version)
    (version / manifest.MANIFEST_NAME).write_text(json.dumps(content))
    assert "does not verify" in _refusal(version, public_keys)


def test_a_signed_version_copied_under_another_number_is_refused(tmp_path, keys):
    private_key, public_keys, _, _ = keys
    version = fake_version_dir(tmp_path)
    manifest.sign_manifest(version, private_key, version=3)
    assert "signed for version 3, not for version 5" in _refusal(version, public_keys, 5)


@pytest.mark.parametrize("tamper, problem", [
    (lambda v, outside: (v / "extra").symlink_to(outside, target_is_directory=True),
     "symlink extra"),
    (lambda v, outside: ((v / "assets" / "feature_defaults.json").unlink(),
                         (v / "assets" / "feature_defaults.json").symlink_to(outside / "f.json")),
     "symlink assets/feature_defaults.json"),
    (lambda v, outside: (v / "extra.bin").write_bytes(b"x"), "extra file extra.bin"),
    (lambda v, outside: os.mkfifo(v / "pipe"), "pipe is not a regular file"),
], ids=["symlinked-folder", "symlinked-file", "extra-file", "fifo"])
def test_symlinks_special_and_extra_files_are_refused(tmp_path, keys, tamper, problem):
    private_key, public_keys, _, _ = keys
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.json").write_text("{}")
    (outside / "payload.bin").write_bytes(b"evil")
    version = fake_version_dir(tmp_path / "serving")
    manifest.sign_manifest(version, private_key, version=3)
    tamper(version, outside)
    assert problem in _refusal(version, public_keys)
    assert any(problem in entry for entry in manifest.verify_manifest(version))


def test_a_symlinked_version_folder_is_refused(tmp_path, keys):
    private_key, public_keys, _, _ = keys
    real = fake_version_dir(tmp_path / "elsewhere")
    manifest.sign_manifest(real, private_key, version=3)
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "3").symlink_to(real, target_is_directory=True)
    assert "is a symlink" in _refusal(tmp_path / "serving" / "3", public_keys)


def test_several_public_keys_allow_a_rotation(tmp_path, keys):
    _, _, old_private, old_public = keys
    new_private, new_public = manifest.generate_signing_key(tmp_path / "keys", name="next")
    both = tmp_path / "server_keys.pem"
    both.write_text(old_public.read_text() + new_public.read_text())
    public_keys = manifest.load_public_keys(both)
    assert len(public_keys) == 2
    old_version, new_version = fake_version_dir(tmp_path / "a"), fake_version_dir(tmp_path / "b")
    manifest.sign_manifest(old_version, old_private, version=3)
    manifest.sign_manifest(new_version, new_private, version=3)
    for version in (old_version, new_version):
        manifest.remove_verified_copy(manifest.verify_signed_version(version, public_keys).path)
    # Re-sign the old version with the new key, then drop the old key from the server.
    assert signing_keys.main(["sign", "--key", str(new_private), str(old_version)]) == 0
    only_new = manifest.load_public_keys(new_public)
    manifest.remove_verified_copy(manifest.verify_signed_version(old_version, only_new).path)


def test_resigning_refuses_a_version_changed_since_its_push(tmp_path, keys, capsys):
    _, _, private_path, _ = keys
    version = fake_version_dir(tmp_path)
    manifest.write_manifest(version)
    (version / "saved_model.pb").write_bytes(b"evil")
    assert signing_keys.main(["sign", "--key", str(private_path), str(version)]) == 1
    assert "not re-signed" in capsys.readouterr().err


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    assert signing_keys.main(["keygen", "--out", str(tmp_path / "k")]) == 0
    private_path = tmp_path / "k" / "model_signing.pem"
    assert stat.S_IMODE(os.stat(private_path).st_mode) == 0o600
    assert len(manifest.load_public_keys(tmp_path / "k" / "model_signing.pub.pem")) == 1
    assert signing_keys.main(["keygen", "--out", str(tmp_path / "k")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_public_key_files_are_checked(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here")
    with pytest.raises(ValueError, match="holds no PEM public key"):
        manifest.load_public_keys(empty)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    rsa_file = tmp_path / "rsa.pem"
    rsa_file.write_bytes(rsa_key.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        manifest.load_public_keys(rsa_file)
    with pytest.raises(ValueError, match="cannot read model signing public key file"):
        manifest.load_public_keys(tmp_path / "missing.pem")


def test_the_pusher_signs_with_a_key_kept_outside_the_serving_tree(tmp_path, keys):
    _, public_keys, private_path, _ = keys
    source = fake_version_dir(tmp_path, "candidate")
    serving = tmp_path / "serving_models"
    target = versions.push_model(str(source), serving, "m", tmp_path / "models.config",
                                 signing_key=private_path)
    verified = manifest.verify_signed_version(target, public_keys, version=1)
    manifest.remove_verified_copy(verified.path)
    inside = serving / "m" / "key.pem"
    shutil.copy(private_path, inside)
    with pytest.raises(ValueError, match="keep the private key outside the serving tree"):
        versions.publish_version(str(source), serving / "m", 2, signing_key=inside)


@pytest.mark.slow
def test_the_server_refuses_unsigned_versions_and_retries_once_signed(tmp_path, keys, caplog):
    """A real SavedModel through ModelManager with a public key: refused with a clear status,
    served from the verified copy once the folder is signed (a change the poll notices)."""
    from ml.serving.model_config import register_pushed_version
    from ml.serving.model_manager import ModelManager
    from tests.serving_fixtures import RISK_MODEL, pristine_models, push_version, wait_for

    private_key, public_keys, _, _ = keys
    home = tmp_path / "home"
    target = push_version(home, RISK_MODEL, 1, register=False)
    config_path = home / "serving_config" / "models.config"
    config = register_pushed_version(config_path, RISK_MODEL, target.parent, 1)
    manager = ModelManager(home, public_keys=public_keys, staging_dir=tmp_path / "staging")
    try:
        manager.apply_config(config, wait_seconds=120)
        status = manager.status(RISK_MODEL)[0]
        assert status.state == "END" and status.error_code == grpc.StatusCode.DATA_LOSS
        assert "Refused version 1 of model etrm_risk_model" in status.error_message
        assert "is not signed" in status.error_message
        manifest.sign_manifest(target, private_key, version=1)
        manager.poll_filesystem()
        wait_for(lambda: manager.status(RISK_MODEL)[0].state == "AVAILABLE", timeout=120)
        servable = manager.resolve(RISK_MODEL, label="stable")
        assert servable.path.parent == tmp_path / "staging"
        assert (servable.path / "saved_model.pb").read_bytes() == \
            (pristine_models()[RISK_MODEL] / "saved_model.pb").read_bytes()
    finally:
        manager.close()


def test_without_a_key_the_manager_warns_once_and_accepts_digest_manifests(tmp_path, caplog):
    from ml.serving import model_manager

    model_manager._UNSIGNED_WARNING.clear()
    caplog.set_level(logging.WARNING, logger="ml.serving.model_manager")
    for _ in range(2):
        model_manager.ModelManager(tmp_path).close()
    warnings = [record for record in caplog.records
                if "no model signing public key configured" in record.getMessage()]
    assert len(warnings) == 1
