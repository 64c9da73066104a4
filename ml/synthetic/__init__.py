"""Building blocks of the synthetic ETRM data generator (one job per module).

The public entry point is ``ml.synthetic_data_generator``; these modules hold the market
reference data, price simulation, trade sampling, risk ground truth, portfolio risk,
compliance records, text rendering and file output it is assembled from.
"""
