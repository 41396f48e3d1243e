{#
  The window a run processes, derived from the UTC partition window [start_date, end_date).

  A UTC day's plays fall on up to three local days (UTC-12 to UTC+14), so a run recomputes the
  local days [start_date - 1 day, end_date): the day before the window is completed by the
  window's first UTC hours, and the last local day is provisional until the next partition
  arrives. Events are read two days either side so every recomputed local day sees all of its
  plays. Every bound is half-open.
#}

{% macro window_date(name) -%}
    cast('{{ var(name) }}' as date)
{%- endmacro %}

{% macro listen_window_start() -%}
    cast({{ dbt.dateadd('day', -1, window_date('start_date')) }} as date)
{%- endmacro %}

{% macro listen_window_end() -%}
    {{ window_date('end_date') }}
{%- endmacro %}

{% macro event_read_start() -%}
    {{ dbt.dateadd('day', -2, window_date('start_date')) }}
{%- endmacro %}

{% macro event_read_end() -%}
    {{ dbt.dateadd('day', 1, window_date('end_date')) }}
{%- endmacro %}

{# How many days before a day its baseline reaches back: the baseline window and the gap before the day. #}
{% macro baseline_reach_days() -%}
    {{ return(var('baseline_window_days') | int + var('baseline_gap_days') | int) }}
{%- endmacro %}

{# Local days whose baseline history the window needs: the baseline's reach before its first day. #}
{% macro history_window_start() -%}
    cast({{ dbt.dateadd('day', -baseline_reach_days(), listen_window_start()) }} as date)
{%- endmacro %}

{# Rows of a model keyed by listen_date that the run recomputes. #}
{% macro in_listen_window(column='listen_date') -%}
    {{ column }} >= {{ listen_window_start() }} and {{ column }} < {{ listen_window_end() }}
{%- endmacro %}

{#
  The rule flags (and the verdicts after them) also restate the var restated_days local days before
  the window: a silence becomes a lasting collapse on its min_lasting_collapse_days-th near-silent
  day, and from then its earlier days are flagged too. Those can lie up to
  (min_lasting_collapse_days - 1) x (max_silent_gap_days + 1) days back; restated_days must reach
  them, or a daily run would leave flags that one run over the same days would not.
#}
{% macro restated_window_start() -%}
    {%- set reach = (var('min_lasting_collapse_days') | int - 1) * (var('max_silent_gap_days') | int + 1) %}
    {%- if var('restated_days') | int < reach %}
        {{ exceptions.raise_compiler_error(
            "var restated_days is " ~ var('restated_days') ~ " but a lasting collapse's first near-silent day can lie "
            ~ reach ~ " days before the day it is decided on ((min_lasting_collapse_days - 1) x (max_silent_gap_days + 1)): "
            ~ "set restated_days to " ~ reach ~ " or more") }}
    {%- endif %}
    cast({{ dbt.dateadd('day', -(var('restated_days') | int), listen_window_start()) }} as date)
{%- endmacro %}

{% macro in_restated_window(column='listen_date') -%}
    {{ column }} >= {{ restated_window_start() }} and {{ column }} < {{ listen_window_end() }}
{%- endmacro %}

{# The plays a run reads: those of the local days it recomputes. Name only the columns a model
   needs: DuckDB materialises a CTE read more than once with every column it selects. #}
{% macro recomputed_plays(columns=['*']) -%}
    select {{ columns | join(', ') }} from {{ ref('stg_listening__events') }}
    where played_at >= {{ event_read_start() }}
        and played_at < {{ event_read_end() }}
        and {{ in_listen_window() }}
{%- endmacro %}
