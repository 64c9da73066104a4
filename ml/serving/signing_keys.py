"""Model signing keys: create a key pair, or re-sign pushed versions after a key rotation.

    python -m ml.serving.signing_keys keygen --out /secure/etrm-keys [--name model_signing]
    python -m ml.serving.signing_keys sign --key /secure/etrm-keys/new.pem VERSION_DIR...

`keygen` writes <name>.pem (the Pusher's private key, mode 0600: keep it outside the serving
tree) and <name>.pub.pem (give it to the server with --model_signing_public_key_file).
`sign` re-signs versions that are already served: it first checks their current manifest's
digests, so re-signing never blesses files changed since they were pushed. Importing this
module loads no TensorFlow.
"""
import argparse
import pathlib
import sys
from typing import List, Optional

from ml.serving.manifest import (ManifestError, generate_signing_key, key_id, load_private_key,
                                 sign_manifest, verify_manifest)


def _folder_version(version_dir: pathlib.Path) -> Optional[int]:
    name = version_dir.name
    return int(name) if name.isascii() and name.isdigit() else None


def resign_version(version_dir: pathlib.Path, private_key_path: pathlib.Path) -> str:
    """Signs a pushed version with another key once its files match its current manifest."""
    problems = verify_manifest(version_dir)
    if problems:
        raise ManifestError(f"{version_dir}: not re-signed, its files do not match its manifest: "
                            f"{'; '.join(problems[:5])}")
    key = load_private_key(private_key_path)
    sign_manifest(version_dir, key, version=_folder_version(version_dir))
    return key_id(key.public_key())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.serving.signing_keys",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="create an Ed25519 key pair")
    keygen.add_argument("--out", required=True, type=pathlib.Path, help="folder for the keys")
    keygen.add_argument("--name", default="model_signing", help="file name stem")
    sign = commands.add_parser("sign", help="re-sign pushed version folders")
    sign.add_argument("--key", required=True, type=pathlib.Path, help="private key PEM")
    sign.add_argument("version_dirs", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            private_path, public_path = generate_signing_key(args.out, args.name)
            public_id = key_id(load_private_key(private_path).public_key())
            print(f"private key {private_path} (keep it outside the serving tree)\n"
                  f"public key  {public_path} (key id {public_id})")
            return 0
        for version_dir in args.version_dirs:
            print(f"{version_dir}: signed with key id {resign_version(version_dir, args.key)}")
        return 0
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
