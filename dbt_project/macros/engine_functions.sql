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

{# Continuous quantile as a window aggregate (followed by an over clause). #}
{% macro window_quantile(expression, fraction) -%}
    {{ return(adapter.dispatch('window_quantile', 'listening_anomalies')(expression, fraction)) }}
{%- endmacro %}

{% macro default__window_quantile(expression, fraction) -%}
    percentile_approx({{ expression }}, {{ fraction }}, 10000)
{%- endmacro %}

{% macro duckdb__window_quantile(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}

{# Whole days since 1970-01-01: an integer to order windows by, so day ranges are portable frames. #}
{% macro day_number(date_expression) -%}
    {{ dbt.datediff("cast('1970-01-01' as date)", date_expression, 'day') }}
{%- endmacro %}
