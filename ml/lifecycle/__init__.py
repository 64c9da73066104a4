"""Model lifecycle over many runs: continuous-learning registrations, the job queue with leases,
and the audit log of every decision. State lives in the project home, so a second process (the
CLI, the dashboard) sees what a running loop does."""
