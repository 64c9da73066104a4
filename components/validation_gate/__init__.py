"""ValidationGate: stops a run before training when ExampleValidator found anomalies."""
