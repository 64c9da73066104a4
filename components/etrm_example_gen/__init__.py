"""ETRMExampleGen: a TFX ExampleGen that ingests one period (span) of synthetic ETRM data."""
