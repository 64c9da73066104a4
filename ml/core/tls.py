"""TLS for the model server and its clients, configured as TensorFlow Serving configures it.

The server reads tensorflow_model_server's `--ssl_config_file`: an SSLConfig message in protobuf
text format whose fields hold the PEM texts themselves (server_key, server_cert, custom_ca) and
client_verify (mutual TLS: clients must present a certificate signed by custom_ca). The proto
is not shipped in the tensorflow-serving-api wheel, so it is declared here field for field
(tensorflow_serving/config/ssl_config.proto) in a private descriptor pool, and the real file is
parsed with text_format. gRPC and REST get the same key and certificate.

Clients take file paths, as `requests` and `grpc` users expect: a CA bundle to trust and,
for mutual TLS, a client certificate and key.
"""
import dataclasses
import os
import pathlib
import ssl
import tempfile
from typing import Optional, Union

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

PathLike = Union[str, os.PathLike]
_FieldProto = descriptor_pb2.FieldDescriptorProto


def _ssl_config_class():
    pool = descriptor_pool.DescriptorPool()
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/ssl_config.proto", package="tensorflow.serving",
        syntax="proto3")
    message = file_proto.message_type.add(name="SSLConfig")
    for number, (name, kind) in enumerate((("server_key", _FieldProto.TYPE_STRING),
                                           ("server_cert", _FieldProto.TYPE_STRING),
                                           ("custom_ca", _FieldProto.TYPE_STRING),
                                           ("client_verify", _FieldProto.TYPE_BOOL)), start=1):
        message.field.add(name=name, number=number, type=kind, label=_FieldProto.LABEL_OPTIONAL)
    pool.Add(file_proto)
    return message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


SSLConfig = _ssl_config_class()


class TlsConfigError(ValueError):
    """An ssl_config_file or client TLS setting that cannot be used, naming the file."""


@dataclasses.dataclass(frozen=True)
class SslConfig:
    """The server's TLS material (PEM texts) from an SSLConfig file."""
    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False
    source: str = ""


def read_ssl_config(path: PathLike) -> SslConfig:
    """Parses TF Serving's SSLConfig text file; raises TlsConfigError naming what is wrong."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TlsConfigError(f"cannot read ssl_config_file {path}: {error}") from error
    try:
        message = text_format.Parse(text, SSLConfig())
    except text_format.ParseError as error:
        raise TlsConfigError(f"ssl_config_file {path} is not an SSLConfig text proto: "
                             f"{error}") from error
    for field in ("server_key", "server_cert"):
        if "-----BEGIN" not in getattr(message, field):
            raise TlsConfigError(f"ssl_config_file {path}: {field} must hold a PEM text "
                                 f"(\"-----BEGIN ...\"), as TensorFlow Serving expects")
    if message.client_verify and "-----BEGIN" not in message.custom_ca:
        raise TlsConfigError(f"ssl_config_file {path}: client_verify needs custom_ca, the PEM "
                             f"of the CA that signs client certificates")
    config = SslConfig(server_key=message.server_key, server_cert=message.server_cert,
                       custom_ca=message.custom_ca, client_verify=message.client_verify,
                       source=str(path))
    server_ssl_context(config)  # fails now, naming the file, rather than at the first client
    return config


def grpc_server_credentials(config: SslConfig):
    """grpc.ServerCredentials for the config (client certificates required if client_verify)."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() if config.custom_ca else None,
        require_client_auth=config.client_verify)


def server_ssl_context(config: SslConfig) -> ssl.SSLContext:
    """An ssl.SSLContext for the REST server with the same key, certificate and client rule."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a key and certificate only from files: a private folder holds them for the
    # moment of loading.
    with tempfile.TemporaryDirectory(prefix="etrm-tls-") as folder:
        cert_path, key_path = pathlib.Path(folder) / "cert.pem", pathlib.Path(folder) / "key.pem"
        for target, text in ((cert_path, config.server_cert), (key_path, config.server_key)):
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
        try:
            context.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as error:
            raise TlsConfigError(f"ssl_config_file {config.source}: server_key and server_cert "
                                 f"cannot be loaded: {error}") from error
    if config.custom_ca:
        try:
            context.load_verify_locations(cadata=config.custom_ca)
        except ssl.SSLError as error:
            raise TlsConfigError(f"ssl_config_file {config.source}: custom_ca cannot be loaded: "
                                 f"{error}") from error
    context.verify_mode = ssl.CERT_REQUIRED if config.client_verify else ssl.CERT_NONE
    return context


@dataclasses.dataclass(frozen=True)
class ClientTls:
    """A client's TLS settings: the CA bundle to trust (None: the system's) and, for mutual
    TLS, a client certificate and its key (PEM file paths)."""
    ca_bundle: Optional[PathLike] = None
    client_cert: Optional[PathLike] = None
    client_key: Optional[PathLike] = None

    def __post_init__(self):
        if (self.client_cert is None) != (self.client_key is None):
            raise TlsConfigError("a client certificate needs its key and a key its certificate: "
                                 f"client_cert={self.client_cert!r}, client_key={self.client_key!r}")

    @staticmethod
    def _read(path: PathLike, what: str) -> bytes:
        try:
            return pathlib.Path(path).read_bytes()
        except OSError as error:
            raise TlsConfigError(f"cannot read {what} {path}: {error}") from error

    def grpc_channel_credentials(self):
        import grpc

        return grpc.ssl_channel_credentials(
            root_certificates=self._read(self.ca_bundle, "CA bundle") if self.ca_bundle else None,
            private_key=self._read(self.client_key, "client key") if self.client_key else None,
            certificate_chain=(self._read(self.client_cert, "client certificate")
                               if self.client_cert else None))

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.ca_bundle) if self.ca_bundle else None)
        if self.client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def requests_options(self) -> dict:
        """`verify` and `cert` for a requests.Session."""
        options = {"verify": str(self.ca_bundle) if self.ca_bundle else True}
        if self.client_cert:
            options["cert"] = (str(self.client_cert), str(self.client_key))
        return options
