"""Writes the curated TFDV schemas under data/schema/ (run after changing the data contract).

Curated rather than inferred: domains list only the trading universe the models were built for
(a new commodity or region is an anomaly that stops training), ranges encode what is physically
possible, and the label and its ground-truth probability are absent in the SERVING environment.
"""
import pathlib
import sys

from tensorflow_metadata.proto.v0 import schema_pb2
from google.protobuf import text_format

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from ml.synthetic import catalog  # noqa: E402

SCHEMA_DIR = pathlib.Path(__file__).resolve().parents[1] / "data" / "schema"
TRAINING, SERVING = "TRAINING", "SERVING"

TRADE_STRING_DOMAINS = {
    "commodity": list(catalog.DEFAULT_COMMODITIES),
    "region": list(catalog.DEFAULT_REGIONS),
    "instrument": list(catalog.INSTRUMENTS),
    "direction": ["buy", "sell"],
    "unit": sorted({catalog.quote(c, r).unit for c in catalog.DEFAULT_COMMODITIES
                    for r in catalog.DEFAULT_REGIONS}),
    "currency": sorted({catalog.quote(c, r).currency for c in catalog.DEFAULT_COMMODITIES
                        for r in catalog.DEFAULT_REGIONS}),
    "option_type": ["none", "call", "put"],
    "counterparty_rating": list(catalog.RATINGS),
    "book": list(catalog.BOOK_NAMES),
}
TRADE_FREE_STRINGS = ["trade_id", "trade_date", "timestamp", "delivery_start", "delivery_end",
                      "delivery_period", "expiry_date", "counterparty", "trader"]
TRADE_FLOAT_RANGES = {
    "volume": (0.0, None), "price": (0.0, None), "notional": (0.0, None), "notional_usd": (0.0, None),
    "forward_price": (0.0, None), "strike": (0.0, None), "premium": (0.0, None),
    "volatility": (0.0, 5.0), "high_risk_probability": (0.0, 1.0),
    "counterparty_exposure_share": (0.0, 1.0),
}
TRADE_INT_RANGES = {"tenor_months": (0, 120), "delivery_months": (1, 60), "high_risk": (0, 1)}
LABEL_ONLY = ["high_risk", "high_risk_probability"]


def _feature(schema, name, kind):
    feature = schema.feature.add(name=name, type=kind)
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.shape.dim.add(size=1)
    return feature


def trades_schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    schema.default_environment.extend([TRAINING, SERVING])
    for name, values in TRADE_STRING_DOMAINS.items():
        feature = _feature(schema, name, schema_pb2.BYTES)
        feature.domain = name
        schema.string_domain.add(name=name, value=values)
    for name in TRADE_FREE_STRINGS:
        _feature(schema, name, schema_pb2.BYTES)
    for name, (low, high) in TRADE_FLOAT_RANGES.items():
        feature = _feature(schema, name, schema_pb2.FLOAT)
        feature.float_domain.min = low
        if high is not None:
            feature.float_domain.max = high
    for name, (low, high) in TRADE_INT_RANGES.items():
        feature = _feature(schema, name, schema_pb2.INT)
        feature.int_domain.min, feature.int_domain.max = low, high
    for feature in schema.feature:
        if feature.name in LABEL_ONLY:
            feature.not_in_environment.append(SERVING)
    return schema


def reports_schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    schema.default_environment.extend([TRAINING, SERVING])
    _feature(schema, "text", schema_pb2.BYTES)
    kind = _feature(schema, "kind", schema_pb2.BYTES)
    kind.domain = "kind"
    schema.string_domain.add(name="kind", value=["trade_confirmation", "risk_summary", "compliance_note"])
    for name in ("record_id", "date"):
        _feature(schema, name, schema_pb2.BYTES)
    return schema


def main() -> None:
    for name, schema in (("trades", trades_schema()), ("reports", reports_schema())):
        path = SCHEMA_DIR / name / "schema.pbtxt"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"# Curated schema for the {name} dataset; written by scripts/write_schemas.py.\n"
        path.write_text(header + text_format.MessageToString(schema))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
