"""API, determinism, configuration errors and file output of the synthetic ETRM generator."""
import contextlib
import io
import json
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.synthetic_data_generator import (RISK_SUMMARY_SECTIONS, TRADE_COLUMNS, DriftScenario,
                                         ETRMDataConfig, SyntheticETRMDataGenerator,
                                         load_dataset, save_dataset)

QUICK_START_SNIPPET = '''
from ml.synthetic_data_generator import SyntheticETRMDataGenerator, ETRMDataConfig
from datetime import datetime

# Configure data generation
config = ETRMDataConfig(
    num_trades=5000,
    num_risk_reports=200,
    start_date=datetime(2023, 1, 1),
    end_date=datetime(2024, 12, 31)
)

# Generate dataset
generator = SyntheticETRMDataGenerator(config)
dataset = generator.generate_complete_dataset()

print(f"Generated {len(dataset['trades'])} trades")
print(f"Generated {len(dataset['text_descriptions'])} text samples")
'''

SMALL = dict(num_trades=400, num_risk_reports=12, start_date=datetime(2023, 3, 1),
             end_date=datetime(2023, 5, 31))


def test_synthetic_data_generation():
    config = ETRMDataConfig(num_trades=100)
    generator = SyntheticETRMDataGenerator(config)
    dataset = generator.generate_complete_dataset()

    assert len(dataset['trades']) == 100
    assert 'text_descriptions' in dataset
    assert len(dataset['metadata']['commodities']) > 0


def test_quick_start_snippet_runs_as_written():
    output = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(output):
        exec(compile(QUICK_START_SNIPPET, "quick_start", "exec"), namespace)
    lines = output.getvalue().splitlines()
    dataset = namespace["dataset"]
    assert lines == ["Generated 5000 trades",
                     f"Generated {len(dataset['text_descriptions'])} text samples"]
    # 200 reports rounded up to whole report dates: every date covers all six books.
    assert len(dataset["risk_reports"]) == 204
    assert len(dataset["text_descriptions"]) > 5000


def test_config_defaults_match_the_spec():
    config = ETRMDataConfig()
    assert (config.num_trades, config.num_positions, config.num_risk_reports) == (1000, 500, 100)
    assert (config.start_date, config.end_date) == (datetime(2023, 1, 1), datetime(2024, 12, 31))
    assert "power" in config.commodities and "natural_gas" in config.commodities
    assert "europe" in config.regions
    assert config.seed == 42 and config.drift_scenarios == [] and config.shuffle_labels is False
    assert config.price_anchor_date == datetime(2020, 1, 1)


@pytest.fixture(scope="module")
def small_dataset():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_complete_dataset()


def test_complete_dataset_has_every_part_and_metadata(small_dataset):
    assert set(small_dataset) == {"trades", "positions", "risk_reports", "compliance",
                                  "text_descriptions", "price_series", "metadata"}
    metadata = small_dataset["metadata"]
    json.dumps(metadata)
    assert metadata["seed"] == 42
    assert metadata["commodities"] == ETRMDataConfig().commodities
    assert metadata["regions"] == ETRMDataConfig().regions
    assert ETRMDataConfig.from_dict(metadata["config"]) == ETRMDataConfig(**SMALL)
    assert metadata["counts"]["trades"] == 400
    assert metadata["counts"]["text_descriptions"] == len(small_dataset["text_descriptions"])
    assert all(isinstance(text, str) and "\n" not in text
               for text in small_dataset["text_descriptions"])


def test_trades_have_the_contract_columns_and_dtypes(small_dataset):
    trades = small_dataset["trades"]
    assert list(trades.columns[:len(TRADE_COLUMNS)]) == list(TRADE_COLUMNS)
    numeric = {"volume": "float64", "price": "float64", "tenor_months": "int64",
               "delivery_months": "int64", "forward_price": "float64", "strike": "float64",
               "premium": "float64",
               "volatility": "float64", "notional": "float64", "high_risk": "int64",
               "high_risk_probability": "float64"}
    for column in TRADE_COLUMNS:
        if column in numeric:
            assert str(trades[column].dtype) == numeric[column], column
        elif trades[column].dtype == object and column not in ("notional_usd",):
            assert trades[column].map(type).eq(str).all(), column
    assert trades["trade_id"].is_unique
    assert set(trades["instrument"]) <= {"future", "forward", "swap", "option"}
    assert set(trades["direction"]) == {"buy", "sell"}
    assert set(trades["counterparty_rating"]) <= {"AAA", "AA", "A", "BBB", "BB", "B", "CCC"}
    assert set(trades["high_risk"]) == {0, 1}
    # Exactly 0 happens: a long option worth less than the loss threshold cannot exceed it.
    assert trades["high_risk_probability"].between(0, 1).all()
    assert trades["high_risk_probability"].gt(0).mean() > 0.9


@pytest.fixture(scope="module")
def small_text_records():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_text_records()


def test_text_records_table_matches_the_dataset_texts(small_text_records, small_dataset):
    records = small_text_records
    assert list(records.columns) == ["text", "kind", "record_id", "date"]
    assert set(records["kind"]) == {"trade_confirmation", "risk_summary", "compliance_note"}
    assert records["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert records["date"].is_monotonic_increasing
    assert records["text"].tolist() == small_dataset["text_descriptions"]


def test_every_risk_summary_has_every_section_in_order(small_text_records):
    summaries = small_text_records.query("kind == 'risk_summary'")["text"]
    assert len(summaries) == SMALL["num_risk_reports"]
    assert RISK_SUMMARY_SECTIONS == ("Portfolio overview", "VaR", "Limits", "Breaches", "Changes")
    for text in summaries:
        positions = [text.find(f"{heading}: ") for heading in RISK_SUMMARY_SECTIONS]
        assert min(positions) >= 0 and positions == sorted(positions), text


def test_phrasing_varies_between_records(small_text_records):
    confirmations = small_text_records.query("kind == 'trade_confirmation'")["text"]
    openings = {text.split(" ")[0] for text in confirmations}
    assert {"Trade", "We"} <= openings and len(openings) > 3


def test_same_config_gives_identical_data():
    first = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_complete_dataset()
    second = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_complete_dataset()
    for key in ("trades", "positions", "risk_reports", "compliance"):
        pd.testing.assert_frame_equal(first[key], second[key])
    assert first["text_descriptions"] == second["text_descriptions"]
    assert first["metadata"] == second["metadata"]
    np.testing.assert_array_equal(first["price_series"].prices, second["price_series"].prices)


def test_another_seed_gives_other_data():
    first = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_trades()
    other = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL, seed=7)).generate_trades()
    assert not np.array_equal(first["price"], other["price"])
    assert set(first["counterparty"]) != set(other["counterparty"])


def test_separately_generated_windows_share_prices_and_reference_data():
    week_one = SyntheticETRMDataGenerator(ETRMDataConfig(
        num_trades=200, start_date=datetime(2024, 3, 4), end_date=datetime(2024, 3, 8)))
    week_two = SyntheticETRMDataGenerator(ETRMDataConfig(
        num_trades=200, start_date=datetime(2024, 3, 11), end_date=datetime(2024, 3, 15)))
    long_window = SyntheticETRMDataGenerator(ETRMDataConfig(
        num_trades=200, start_date=datetime(2023, 1, 1), end_date=datetime(2024, 12, 31)))
    prices_one = week_one.generate_price_series()
    prices_long = long_window.generate_price_series()
    overlap = len(prices_one.dates)
    np.testing.assert_array_equal(prices_one.dates, prices_long.dates[:overlap])
    np.testing.assert_array_equal(prices_one.prices, prices_long.prices[:overlap])
    np.testing.assert_array_equal(prices_one.volatility, prices_long.volatility[:overlap])
    trades_one, trades_two = week_one.generate_trades(), week_two.generate_trades()
    assert not trades_one["trade_id"].isin(trades_two["trade_id"]).any()
    rating_one = dict(zip(trades_one["counterparty"], trades_one["counterparty_rating"]))
    rating_two = dict(zip(trades_two["counterparty"], trades_two["counterparty_rating"]))
    shared = set(rating_one) & set(rating_two)
    assert shared and all(rating_one[name] == rating_two[name] for name in shared)
    assert set(trades_one["trade_date"]) <= {f"2024-03-0{d}" for d in range(4, 9)}


def test_generate_trades_equals_the_complete_dataset_trades(small_dataset):
    trades = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).generate_trades()
    pd.testing.assert_frame_equal(trades, small_dataset["trades"])


WEEKEND = datetime(2024, 3, 9)


@pytest.mark.parametrize("kwargs, words", [
    (dict(num_trades=-5), ["num_trades", "-5", ">= 1"]),
    (dict(num_trades=0), ["num_trades", ">= 1"]),
    (dict(num_trades=1.5), ["num_trades", "integer"]),
    (dict(num_trades=True), ["num_trades", "integer"]),
    (dict(num_positions=-1), ["num_positions", ">= 0"]),
    (dict(num_risk_reports=-3), ["num_risk_reports", ">= 0"]),
    (dict(seed=-1), ["seed", ">= 0"]),
    (dict(num_books=99), ["num_books", "<= 8"]),
    (dict(start_date=datetime(2024, 1, 1), end_date=datetime(2023, 1, 1)),
     ["end_date", "before start_date"]),
    (dict(start_date="2023-01-01"), ["start_date", "datetime"]),
    (dict(start_date=datetime(2019, 6, 1)), ["start_date", "price_anchor_date"]),
    (dict(start_date=WEEKEND, end_date=WEEKEND), ["end_date", "trading day"]),
    (dict(commodities=["power", "gold"]), ["commodities", "'gold'", "natural_gas", "power"]),
    (dict(commodities=[]), ["commodities", "empty"]),
    (dict(commodities="power"), ["commodities", "list"]),
    (dict(commodities=["power", "power"]), ["commodities", "duplicate"]),
    (dict(regions=["mars"]), ["regions", "'mars'", "europe", "north_america"]),
    (dict(shuffle_labels="yes"), ["shuffle_labels", "True or False"]),
    (dict(drift_scenarios=["volatility_shock"]), ["drift_scenarios", "DriftScenario"]),
    (dict(drift_scenarios=[DriftScenario("new_category", datetime(2024, 1, 1), 0.2,
                                         category_name="power")]),
     ["category_name", "'power'", "never seen"]),
    (dict(drift_scenarios=[DriftScenario("price_shift", datetime(2024, 1, 1), 0.2,
                                         commodities=["hydrogen"])]),
     ["DriftScenario.commodities", "hydrogen"]),
])
def test_bad_config_raises_value_error_naming_field_and_allowed_values(kwargs, words):
    with pytest.raises(ValueError) as error:
        ETRMDataConfig(**kwargs)
    message = str(error.value)
    assert "allowed" in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("kwargs, words", [
    (dict(kind="meteor"), ["kind", "'meteor'", "volatility_shock", "price_shift", "mix_change",
                           "new_category", "concept_change"]),
    (dict(kind="mix_change", magnitude=1.5), ["magnitude", "0 <= magnitude <= 1"]),
    (dict(kind="new_category", magnitude=0.0), ["magnitude", "0 < magnitude <= 1"]),
    (dict(kind="price_shift", magnitude=-1.0), ["magnitude", "> -1"]),
    (dict(kind="volatility_shock", magnitude=float("nan")), ["magnitude", "finite"]),
    (dict(kind="new_category", category_name="unobtainium"), ["category_name", "hydrogen"]),
    (dict(kind="new_category", category_field="trader"), ["category_field", "commodity"]),
    (dict(kind="mix_change", target_mix={"gold": 1.0}), ["target_mix", "'gold'"]),
    (dict(kind="volatility_shock", start_date="2024-01-01"), ["start_date", "datetime"]),
])
def test_bad_drift_scenario_raises_value_error(kwargs, words):
    arguments = dict(kind="volatility_shock", start_date=datetime(2024, 1, 1), magnitude=0.5)
    arguments.update(kwargs)
    with pytest.raises(ValueError) as error:
        DriftScenario(**arguments)
    for word in words:
        assert word in str(error.value), (word, str(error.value))


def test_config_mutated_after_construction_is_rechecked():
    config = ETRMDataConfig(num_trades=10)
    config.num_trades = -1
    with pytest.raises(ValueError, match="num_trades"):
        SyntheticETRMDataGenerator(config)


def test_more_risk_reports_than_dates_and_books_is_refused():
    config = ETRMDataConfig(num_trades=50, num_risk_reports=100, start_date=datetime(2024, 3, 4),
                            end_date=datetime(2024, 3, 5))
    generator = SyntheticETRMDataGenerator(config)
    assert len(generator.generate_trades()) == 50
    with pytest.raises(ValueError, match=r"num_risk_reports.*allowed: an integer <= 12"):
        generator.generate_complete_dataset()


def test_save_writes_the_spec_files_atomically_and_round_trips(small_dataset, tmp_path):
    out_dir = tmp_path / "dataset"
    written = SyntheticETRMDataGenerator(ETRMDataConfig(**SMALL)).save(small_dataset,
                                                                        str(out_dir))
    expected = {"trades.csv", "positions.csv", "risk_reports.csv", "compliance.csv",
                "text_descriptions.txt", "price_series.npz", "metadata.json"}
    assert set(os.listdir(out_dir)) == expected
    assert {os.path.basename(p) for p in written.values()} == expected
    loaded = load_dataset(str(out_dir))
    for key in ("trades", "positions", "risk_reports", "compliance"):
        pd.testing.assert_frame_equal(loaded[key], small_dataset[key], check_dtype=False)
    assert loaded["text_descriptions"] == small_dataset["text_descriptions"]
    assert loaded["metadata"] == small_dataset["metadata"]
    np.testing.assert_array_equal(loaded["price_series"].prices,
                                  small_dataset["price_series"].prices)
    assert loaded["price_series"].names == small_dataset["price_series"].names

    save_dataset(small_dataset, str(out_dir))
    assert set(os.listdir(out_dir)) == expected


def test_failed_save_leaves_previous_file_and_no_temporary(small_dataset, tmp_path):
    save_dataset(small_dataset, str(tmp_path))
    before = (tmp_path / "metadata.json").read_text()
    broken = dict(small_dataset, metadata={"not json": object()})
    with pytest.raises(TypeError):
        save_dataset(broken, str(tmp_path))
    assert (tmp_path / "metadata.json").read_text() == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_text_columns_hold_plain_python_strings(small_dataset):
    for key in ("trades", "positions", "risk_reports", "compliance"):
        frame = small_dataset[key]
        for column in frame.columns[frame.dtypes == object]:
            types = set(frame[column].map(type))
            assert types == {str}, (key, column, types)


@pytest.mark.parametrize("kwargs", [
    dict(num_trades=1, num_risk_reports=0),
    dict(num_trades=3, num_risk_reports=1, start_date=datetime(2024, 3, 4),
         end_date=datetime(2024, 3, 4)),
    dict(num_trades=50, num_risk_reports=5, start_date=datetime(2020, 1, 1),
         end_date=datetime(2020, 1, 10)),
    dict(num_trades=300, num_risk_reports=4, commodities=["power"], regions=["uk"],
         drift_scenarios=[DriftScenario("new_category", datetime(2024, 1, 1), 0.3),
                          DriftScenario("new_category", datetime(2024, 6, 1), 0.3,
                                        category_name="coal")]),
], ids=["one-trade-no-reports", "single-day", "window-at-anchor", "one-pair-two-new"])
def test_edge_configurations_generate_consistent_datasets(kwargs):
    config = ETRMDataConfig(**kwargs)
    dataset = SyntheticETRMDataGenerator(config).generate_complete_dataset()
    trades = dataset["trades"]
    assert len(trades) == config.num_trades
    books = config.num_books
    assert len(dataset["risk_reports"]) == -(-config.num_risk_reports // books) * books
    opening = SyntheticETRMDataGenerator(config).generate_opening_trades()
    legs = pd.concat([trades, opening])["delivery_months"].sum()
    assert dataset["positions"]["num_trades"].sum() == legs
    assert len(dataset["text_descriptions"]) >= len(trades) + config.num_risk_reports
    if config.drift_scenarios:
        late = trades[trades["trade_date"] >= "2024-06-01"]["commodity"].value_counts(
            normalize=True)
        assert late["hydrogen"] == pytest.approx(0.3, abs=0.15)
        assert late["coal"] == pytest.approx(0.3, abs=0.15)
        assert "coal" not in set(trades[trades["trade_date"] < "2024-01-01"]["commodity"])


def test_price_series_is_shared_read_only():
    generator = SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=10))
    prices = generator.generate_price_series()
    assert generator.generate_price_series() is prices
    with pytest.raises(ValueError):
        prices.prices[0, 0] = 1.0
