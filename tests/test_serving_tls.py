"""TLS in transit with tensorflow_model_server's --ssl_config_file, on gRPC and REST, with a
throwaway CA: a client without the CA is refused, one with it is served, and with client_verify
a client without a certificate is refused."""
import datetime as dt
import ipaddress

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from ml.core.tls import TlsConfigError, read_ssl_config
from ml.serving_client.client import TensorFlowServingClient, TensorFlowServingError
from tests.serving_fixtures import RISK_MODEL, push_version, start_server

pytestmark = pytest.mark.network


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, ca=False, sans=()):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _text_field(name: str, pem: str) -> str:
    """A string field the way TF Serving's docs write PEMs: one quoted piece per line."""
    return f"{name}: " + "\n  ".join(f'"{line}\\n"' for line in pem.strip().splitlines()) + "\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("etrm test CA", ca_key, "etrm test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, "etrm test CA", ca_key, sans=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("etrm client", client_key, "etrm test CA", ca_key)
    paths = {"ca": folder / "ca.pem", "client_cert": folder / "client.pem",
             "client_key": folder / "client.key"}
    paths["ca"].write_text(_pem(ca))
    paths["client_cert"].write_text(_pem(client))
    paths["client_key"].write_text(_key_pem(client_key))
    for verify in (False, True):
        config = folder / f"ssl_{'mutual' if verify else 'server'}.config"
        config.write_text(_text_field("server_key", _key_pem(server_key))
                          + _text_field("server_cert", _pem(server))
                          + _text_field("custom_ca", _pem(ca))
                          + f"client_verify: {str(verify).lower()}\n")
        paths["mutual" if verify else "server"] = config
    return paths


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("tls-home")
    push_version(home, RISK_MODEL, 1)
    return home


@pytest.fixture(scope="module")
def tls_server(home, pki):
    server = start_server(home, ssl_config_file=str(pki["server"]))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mutual_server(home, pki):
    server = start_server(home, ssl_config_file=str(pki["mutual"]))
    yield server
    server.stop()


def _client(server, protocol, **tls):
    return TensorFlowServingClient(host="127.0.0.1", rest_port=server.rest_api_port,
                                   grpc_port=server.grpc_port, protocol=protocol,
                                   max_retries=0, timeout_seconds=10, **tls)


def test_ssl_config_file_in_tf_servings_format_is_read(pki):
    config = read_ssl_config(pki["mutual"])
    assert config.client_verify and config.server_key.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert config.custom_ca.strip().endswith("-----END CERTIFICATE-----")


def test_a_bad_ssl_config_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "ssl.config"
    path.write_text('server_key: "not a key"\nserver_cert: "-----BEGIN CERTIFICATE-----"\n')
    with pytest.raises(TlsConfigError, match="ssl.config: server_key must hold a PEM"):
        read_ssl_config(path)
    path.write_text("server_key: {")
    with pytest.raises(TlsConfigError, match="not an SSLConfig text proto"):
        read_ssl_config(path)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_client_with_the_ca_is_served(tls_server, pki, protocol):
    with _client(tls_server, protocol, ca_bundle=pki["ca"]) as client:
        assert client.model_status(RISK_MODEL)[0]["state"] == "AVAILABLE"
        assert client.rest_url.startswith("https://")


def test_a_rest_client_without_the_ca_or_without_tls_is_refused(tls_server):
    base = f"127.0.0.1:{tls_server.rest_api_port}/v1/models/{RISK_MODEL}"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{base}", timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{base}", timeout=10)


def test_a_grpc_client_without_the_ca_is_refused(tls_server):
    channel = grpc.secure_channel(f"127.0.0.1:{tls_server.grpc_port}",
                                  grpc.ssl_channel_credentials())
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = RISK_MODEL
    with pytest.raises(grpc.RpcError) as raised:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
    insecure = grpc.insecure_channel(f"127.0.0.1:{tls_server.grpc_port}")
    with pytest.raises(grpc.RpcError):
        model_service_pb2_grpc.ModelServiceStub(insecure).GetModelStatus(request, timeout=10)
    insecure.close()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_mutual_tls_refuses_a_client_without_a_certificate(mutual_server, pki, protocol):
    with _client(mutual_server, protocol, ca_bundle=pki["ca"]) as client:
        with pytest.raises(TensorFlowServingError) as raised:
            client.model_status(RISK_MODEL)
        assert raised.value.code == "UNAVAILABLE"
    with _client(mutual_server, protocol, ca_bundle=pki["ca"], client_cert=pki["client_cert"],
                 client_key=pki["client_key"]) as client:
        assert client.model_status(RISK_MODEL)[0]["state"] == "AVAILABLE"
