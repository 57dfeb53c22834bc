"""The Great Expectations 1.x core expectation types a descriptor may name.

Kept as data so that loading definitions does not import GX (~6 s); `tests/test_descriptor.py`
asserts this list equals what the installed GX registers.
"""

EXPECTATION_TYPES: frozenset[str] = frozenset(
    [
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
        "expect_column_k_l_divergence_to_be_less_than",
        "expect_column_max_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_min_to_be_between",
        "expect_column_most_common_value_to_be_in_set",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_to_be_in_set",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_sum_to_be_between",
        "expect_column_to_exist",
        "expect_column_type_to_be",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_value_z_scores_to_be_less_than",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_decreasing",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_match_json_schema",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_match_like_pattern_list",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_be_outliers",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern_list",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_not_match_regex_list",
        "expect_compound_columns_to_be_unique",
        "expect_multicolumn_sum_to_equal",
        "expect_multicolumn_values_to_be_equal",
        "expect_multicolumn_values_to_be_unique",
        "expect_query_results_to_match_comparison",
        "expect_select_column_values_to_be_unique_within_record",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_equal_other_table",
    ]
)

# Core types a descriptor may not name, each with why: they pass GX's own validation, then could only
# fail at run time (`tests/test_checks.py` asserts each still does, on DuckDB).
# `expect_query_results_to_match_comparison` also runs its `base_query` as written: SQL of the
# domain's choosing, more than one statement included, on the connection that audits the product.
_NO_SQL = "Great Expectations implements it for pandas and Spark only, not in SQL, where the checks run"
_NO_LIKE = "Great Expectations has no LIKE operator for DuckDB; use the regex form (RE2) of this expectation"
_TYPE_IS_CONTRACT = (
    "the product's schema contract already checks each column's type, in the warehouse's own names, before any "
    "expectation runs (the column's `type`); Great Expectations cannot read column types from DuckDB with this "
    "SQLAlchemy (pg_catalog.pg_collation, duckdb_engine#1391)"
)
UNSUPPORTED_TYPES: dict[str, str] = {
    "expect_query_results_to_match_comparison": (
        "it queries another Great Expectations data source (comparison_data_source_name), which a mesh check "
        "has none of, and runs base_query as written"
    ),
    "expect_column_values_to_be_dateutil_parseable": _NO_SQL,
    "expect_column_values_to_be_decreasing": _NO_SQL,
    "expect_column_values_to_be_increasing": _NO_SQL,
    "expect_column_values_to_be_json_parseable": _NO_SQL,
    "expect_column_values_to_match_json_schema": _NO_SQL,
    "expect_column_values_to_match_strftime_format": _NO_SQL,
    "expect_column_values_to_match_like_pattern": _NO_LIKE,
    "expect_column_values_to_match_like_pattern_list": _NO_LIKE,
    "expect_column_values_to_not_match_like_pattern": _NO_LIKE,
    "expect_column_values_to_not_match_like_pattern_list": _NO_LIKE,
    "expect_column_type_to_be": _TYPE_IS_CONTRACT,
    "expect_column_values_to_be_in_type_list": _TYPE_IS_CONTRACT,
    "expect_column_values_to_be_of_type": _TYPE_IS_CONTRACT,
    "expect_column_values_to_not_be_outliers": (
        "Great Expectations does not implement its outlier detection for DuckDB; use expect_column_values_to_be_between"
    ),
}
