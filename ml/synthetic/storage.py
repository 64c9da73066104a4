"""Writing and reading a generated dataset; every file is replaced atomically.

Each file is written to a hidden temporary name in the target folder, flushed to disk and then
renamed over the final name (os.replace), so a reader never sees a half-written file even if
the writer is interrupted.
"""
import json
import os
from typing import Callable, Dict

import numpy as np
import pandas as pd

from ml.core.atomic_files import atomic_write
from ml.synthetic.prices import PriceSeries

TABLE_FILES = {"trades": "trades.csv", "positions": "positions.csv",
               "risk_reports": "risk_reports.csv", "compliance": "compliance.csv"}
TEXT_FILE = "text_descriptions.txt"
PRICE_FILE = "price_series.npz"
METADATA_FILE = "metadata.json"


def _write_atomically(path: str, write: Callable, binary: bool = False) -> None:
    atomic_write(path, write, binary=binary)


def save_dataset(dataset: dict, out_dir: str) -> Dict[str, str]:
    """Write the dataset's files into out_dir (created if missing); returns name -> path.

    Files: trades.csv, positions.csv, risk_reports.csv, compliance.csv,
    text_descriptions.txt (one text per line), price_series.npz, metadata.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for key, filename in TABLE_FILES.items():
        if key in dataset:
            path = os.path.join(out_dir, filename)
            _write_atomically(path, lambda h, frame=dataset[key]: frame.to_csv(h, index=False))
            written[key] = path
    texts = list(dataset["text_descriptions"])
    if any("\n" in text for text in texts):
        raise ValueError("text_descriptions: a text contains a newline; allowed: single-line "
                         "texts (the file holds one text per line)")
    written["text_descriptions"] = os.path.join(out_dir, TEXT_FILE)
    _write_atomically(written["text_descriptions"],
                      lambda h: h.write("".join(text + "\n" for text in texts)))
    prices = dataset["price_series"]
    arrays = prices.to_npz_arrays() if isinstance(prices, PriceSeries) else dict(prices)
    written["price_series"] = os.path.join(out_dir, PRICE_FILE)
    _write_atomically(written["price_series"], lambda h: np.savez_compressed(h, **arrays),
                      binary=True)
    written["metadata"] = os.path.join(out_dir, METADATA_FILE)
    _write_atomically(written["metadata"], lambda h: json.dump(
        dataset["metadata"], h, indent=2, sort_keys=True))
    return written


def load_dataset(out_dir: str) -> dict:
    """Read a folder written by save_dataset back into the generate_complete_dataset layout."""
    dataset = {}
    for key, filename in TABLE_FILES.items():
        path = os.path.join(out_dir, filename)
        if os.path.exists(path):
            dataset[key] = pd.read_csv(path, keep_default_na=False,
                                       na_values={"limit_usd": [""], "utilisation": [""]})
    with open(os.path.join(out_dir, TEXT_FILE), encoding="utf-8") as handle:
        dataset["text_descriptions"] = handle.read().splitlines()
    with np.load(os.path.join(out_dir, PRICE_FILE)) as arrays:
        dataset["price_series"] = PriceSeries.from_npz_arrays(arrays)
    with open(os.path.join(out_dir, METADATA_FILE), encoding="utf-8") as handle:
        dataset["metadata"] = json.load(handle)
    return dataset
