"""Client library for TF Serving's REST and gRPC APIs and the ETRM models served there."""
