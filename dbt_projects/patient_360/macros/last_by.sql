{# The value of `value` on the row with the latest `order_by` (rows without one are skipped):
   DuckDB has arg_max, PostgreSQL an ordered array_agg. dbt picks the macro for the target. #}
{% macro last_by(value, order_by) -%}
    {{ return(adapter.dispatch('last_by')(value, order_by)) }}
{%- endmacro %}

{% macro default__last_by(value, order_by) -%}
    arg_max({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro postgres__last_by(value, order_by) -%}
    (array_agg({{ value }} order by {{ order_by }} desc) filter (where {{ order_by }} is not null))[1]
{%- endmacro %}
