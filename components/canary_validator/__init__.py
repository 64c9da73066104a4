"""CanaryValidator: InfraValidator's job without Docker, on the project's local model server."""
