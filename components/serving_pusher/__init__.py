"""ServingPusher: TFX's Pusher with TF Serving's integer versions, a manifest and models.config."""
