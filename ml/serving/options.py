"""Settings of the local model server (importable without TensorFlow, for CLIs)."""
import dataclasses
import pathlib
from typing import Optional

from ml.core.home import Home


@dataclasses.dataclass
class ServerOptions:
    """Settings of one server; names follow tensorflow_model_server's flags."""
    home: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8500
    rest_api_port: int = 8501
    model_config_file: Optional[str] = None
    model_config_file_poll_wait_seconds: float = 0.0
    file_system_poll_wait_seconds: float = 1.0
    enable_batching: bool = False
    batching_parameters_file: Optional[str] = None
    monitoring_config_file: Optional[str] = None
    request_log_sampling_rate: float = 0.0
    request_log_max_records_per_file: int = 10000
    request_log_max_file_age_seconds: float = 300.0
    max_request_bytes: int = 32 * 1024 * 1024
    grpc_max_workers: int = 64
    model_load_wait_seconds: float = 300.0
    # A REST connection must deliver a complete request head this long after it opened or
    # after its previous response (idle keep-alive connections close then too) ...
    rest_idle_timeout_seconds: float = 30.0
    # ... and the body this long after the head.
    rest_body_timeout_seconds: float = 30.0
    rest_max_connections: int = 1024
    ssl_config_file: Optional[str] = None
    allow_remote_reload: bool = False
    model_signing_public_key_file: Optional[str] = None

    def signing_public_key_path(self) -> Optional[pathlib.Path]:
        """The public key(s) versions must be signed with: the flag's file, else the home's
        own key (made by its first pipeline run), else None (digest manifests only)."""
        if self.model_signing_public_key_file:
            return pathlib.Path(self.model_signing_public_key_file)
        home_key = Home.resolve(self.home).model_signing_public_key
        return home_key if home_key.exists() else None

    def resolved_home(self) -> pathlib.Path:
        return Home.resolve(self.home).root

    def config_path(self) -> pathlib.Path:
        if self.model_config_file:
            return pathlib.Path(self.model_config_file)
        return Home.resolve(self.home).models_config_path
