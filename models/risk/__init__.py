"""etrm_risk_model: trade features -> calibrated probability of a high-risk trade."""
