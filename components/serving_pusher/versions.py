"""Publishes a SavedModel into TF Serving's layout (ml/core/serving_layout.py) as one version."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import Optional

# Inside the version, so the manifest's digests (and signature) cover it; assets.extra is TF
# Serving's folder for files beside the model.
PUSH_RECORD = pathlib.Path("assets.extra") / "etrm_push.json"


def _check_key_outside(signing_key: pathlib.Path, base_dir: pathlib.Path) -> None:
    """A private key inside the served tree could be read (or replaced) by whoever can write
    models there, which is exactly what the signature must protect against."""
    serving_root = base_dir.resolve().parent
    key = signing_key.resolve()
    if key == serving_root or serving_root in key.parents:
        raise ValueError(f"model signing key {signing_key} lies inside the serving folder "
                         f"{serving_root}; keep the private key outside the serving tree")


def pushed_under_key(base_dir: os.PathLike, push_key: str) -> Optional[int]:
    """The version an earlier push with this key published (None when none did)."""
    from ml.core.serving_layout import list_version_dirs

    for version in list_version_dirs(base_dir):
        record = pathlib.Path(base_dir) / str(version) / PUSH_RECORD
        try:
            if json.loads(record.read_text()).get("push_key") == push_key:
                return version
        except (OSError, ValueError):
            continue
    return None


def publish_version(model_dir: str, base_dir: pathlib.Path, version: int,
                    signing_key: Optional[os.PathLike] = None, push_key: str = "") -> pathlib.Path:
    """Copies to a hidden staging folder, writes the manifest (signed with `signing_key`, a
    private key PEM, when given), then renames into place.

    TF Serving ignores folders whose names are not integers, so it never sees a half copy.
    The copy resolves symlinks of the source, so the published version holds none.
    """
    from ml.serving.manifest import load_private_key, sign_manifest, write_manifest

    base_dir = pathlib.Path(base_dir)
    private_key = None
    if signing_key is not None:
        _check_key_outside(pathlib.Path(signing_key), base_dir)
        private_key = load_private_key(signing_key)
    target = base_dir / str(version)
    if target.exists():
        raise FileExistsError(f"serving version folder {target} already exists")
    base_dir.mkdir(parents=True, exist_ok=True)
    staging = base_dir / f".staging-{version}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        shutil.copytree(model_dir, staging)
        if push_key:
            (staging / PUSH_RECORD).parent.mkdir(parents=True, exist_ok=True)
            (staging / PUSH_RECORD).write_text(json.dumps({"push_key": push_key}))
        if private_key is not None:
            sign_manifest(staging, private_key, version=version)
        else:
            write_manifest(staging)
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def push_model(model_dir: str, serving_base_dir: os.PathLike, model_name: str,
               models_config_path: os.PathLike, num_versions: int = 2,
               signing_key: Optional[os.PathLike] = None, push_key: str = "") -> pathlib.Path:
    """The whole push as the Pusher runs it: the next version, TF Serving's two config steps
    around the folder's appearance, so no poll (file system or config) sees a label on a
    version the policy does not serve, or a policy that drops what a label points at.

    With a push_key already published (a retried job whose earlier attempt died after the
    folder appeared), nothing is copied again: the earlier version gets `canary` if the
    config step never happened. The whole push holds models.config's write lock, so a
    promotion or rollback between its two steps is not overwritten by the second."""
    from ml.serving.model_config import config_write_lock

    with config_write_lock(models_config_path):
        return _push_model(model_dir, serving_base_dir, model_name, models_config_path,
                           num_versions, signing_key, push_key)


def _push_model(model_dir: str, serving_base_dir: os.PathLike, model_name: str,
                models_config_path: os.PathLike, num_versions: int,
                signing_key: Optional[os.PathLike], push_key: str) -> pathlib.Path:
    from ml.core.serving_layout import next_version
    from ml.serving.model_config import (CANARY_LABEL, admit_pushed_version,
                                         complete_pushed_version, find_model_config,
                                         read_model_server_config, register_pushed_version)

    base_dir = pathlib.Path(serving_base_dir) / model_name
    earlier = pushed_under_key(base_dir, push_key) if push_key else None
    if earlier is not None:
        try:
            labels = find_model_config(read_model_server_config(models_config_path),
                                       model_name).version_labels
        except KeyError:
            labels = {}
        if labels.get(CANARY_LABEL) != earlier:
            register_pushed_version(models_config_path, model_name, base_dir, earlier,
                                    num_versions=num_versions)
        return base_dir / str(earlier)
    version = next_version(base_dir)
    final = admit_pushed_version(models_config_path, model_name, base_dir, version,
                                 num_versions=num_versions)
    target = publish_version(model_dir, base_dir, version, signing_key=signing_key,
                             push_key=push_key)
    complete_pushed_version(models_config_path, final)
    return target
