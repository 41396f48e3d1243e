{#
  Engine-specific functions, each behind one adapter.dispatch with a default (ANSI / Spark)
  implementation and a DuckDB one, so the models stay portable to dbt-spark.
#}

{# UTC timestamp -> wall-clock timestamp in an IANA zone (daylight saving handled by the engine). #}
{% macro to_local_timestamp(utc_timestamp, time_zone) -%}
    {{ return(adapter.dispatch('to_local_timestamp', 'listening_anomalies')(utc_timestamp, time_zone)) }}
{%- endmacro %}

{% macro default__to_local_timestamp(utc_timestamp, time_zone) -%}
    from_utc_timestamp({{ utc_timestamp }}, {{ time_zone }})
{%- endmacro %}

{% macro duckdb__to_local_timestamp(utc_timestamp, time_zone) -%}
    timezone({{ time_zone }}, timezone('UTC', {{ utc_timestamp }}))
{%- endmacro %}

{# Seconds since the epoch, fractional, of a UTC timestamp. #}
{% macro epoch_seconds(utc_timestamp) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'listening_anomalies')(utc_timestamp)) }}
{%- endmacro %}

{% macro default__epoch_seconds(utc_timestamp) -%}
    cast(unix_micros({{ utc_timestamp }}) as double) / 1000000.0
{%- endmacro %}

{% macro duckdb__epoch_seconds(utc_timestamp) -%}
    epoch({{ utc_timestamp }})
{%- endmacro %}

{# Continuous quantile of an aggregate group. #}
{% macro quantile(expression, fraction) -%}
    {{ return(adapter.dispatch('quantile', 'listening_anomalies')(expression, fraction)) }}
{%- endmacro %}

{% macro default__quantile(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}

{% macro spark__quantile(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}

{% macro duckdb__quantile(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}

{# Continuous quantiles of a window frame, as one array (followed by an over clause): one sort of
   the frame serves every fraction. Read an element with array_item. #}
{% macro window_quantiles(expression, fractions) -%}
    {{ return(adapter.dispatch('window_quantiles', 'listening_anomalies')(expression, fractions)) }}
{%- endmacro %}

{% macro default__window_quantiles(expression, fractions) -%}
    percentile_approx({{ expression }}, array({{ fractions | join(', ') }}), 10000)
{%- endmacro %}

{% macro spark__window_quantiles(expression, fractions) -%}
    percentile({{ expression }}, array({{ fractions | join(', ') }}))
{%- endmacro %}

{% macro duckdb__window_quantiles(expression, fractions) -%}
    quantile_cont({{ expression }}, [{{ fractions | join(', ') }}])
{%- endmacro %}

{# The element at a 1-based position of an array. #}
{% macro array_item(array_expression, position) -%}
    {{ return(adapter.dispatch('array_item', 'listening_anomalies')(array_expression, position)) }}
{%- endmacro %}

{% macro default__array_item(array_expression, position) -%}
    element_at({{ array_expression }}, {{ position }})
{%- endmacro %}

{% macro duckdb__array_item(array_expression, position) -%}
    {{ array_expression }}[{{ position }}]
{%- endmacro %}

{# One row per whole number from first to last (inclusive), in a select list. #}
{% macro integer_series(first, last) -%}
    {{ return(adapter.dispatch('integer_series', 'listening_anomalies')(first, last)) }}
{%- endmacro %}

{% macro default__integer_series(first, last) -%}
    explode(sequence({{ first }}, {{ last }}))
{%- endmacro %}

{% macro duckdb__integer_series(first, last) -%}
    unnest(range({{ first }}, {{ last }} + 1))
{%- endmacro %}

{# Whole days since 1970-01-01: an integer to order windows by, so day ranges are portable frames. #}
{% macro day_number(date_expression) -%}
    {{ dbt.datediff("cast('1970-01-01' as date)", date_expression, 'day') }}
{%- endmacro %}
