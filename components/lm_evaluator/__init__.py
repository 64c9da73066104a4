"""LMEvaluator: blesses the report language model against an n-gram baseline and the serving LM."""
