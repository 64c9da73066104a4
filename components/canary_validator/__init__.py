"""CanaryValidator: InfraValidator's job (the pre-push serving check) without Docker, on the
project's local model server."""
