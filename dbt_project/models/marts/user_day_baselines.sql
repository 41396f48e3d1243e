{{
    config(
        unique_key='listen_date',
    )
}}

{#
  Each user's usual behaviour before each day: robust statistics over the user's active days in
  [listen_date - baseline_window_days, listen_date). Only earlier days count, so a day's baseline
  never changes when that day or any later day changes. Medians and interquartile ranges keep
  one anomalous day from hiding the next one.
  Grain: one row per user_id and listen_date of user_day_features.
#}

{%- set signals = deviation_signals() %}

with

targets as (

    select * from {{ ref('user_day_features') }}
    where {{ in_listen_window() }}

),

history as (

    select * from {{ ref('user_day_features') }}
    where listen_date >= {{ history_window_start() }}
        and listen_date < {{ listen_window_end() }}

),

paired as (

    select
        targets.user_id,
        targets.listen_date,
        history.listen_date as history_date,
        {%- for signal in signals %}
        history.{{ signal.metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from targets
    left join history
        on targets.user_id = history.user_id
        and history.listen_date < targets.listen_date
        and history.listen_date >= {{ dbt.dateadd('day', -(var('baseline_window_days') | int), 'targets.listen_date') }}

),

final as (

    select
        user_id,
        listen_date,
        count(history_date) as baseline_days,
        {%- for signal in signals %}
        {{ quantile(signal.metric, 0.5) }} as usual_{{ signal.metric }},
        -- The interquartile range / 1.349 estimates a standard deviation without being moved by
        -- outliers; log-scale signals get it in log units.
        (
            {{ quantile(signal_scale(signal, signal.metric), 0.75) }}
            - {{ quantile(signal_scale(signal, signal.metric), 0.25) }}
        ) / 1.349 as spread_{{ signal.metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from paired
    group by user_id, listen_date

)

select * from final
