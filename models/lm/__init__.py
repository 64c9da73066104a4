"""etrm_report_lm: a decoder-only transformer that writes ETRM reports (trained, fine-tuned, served)."""
