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

  Window frames over a day number (not a self-join): each aggregate reads each history row once,
  where a join would copy every day baseline_window_days times.
#}

{%- set signals = deviation_signals() %}
{%- set history_frame = 'over (partition by user_id order by day_number range between '
    ~ var('baseline_window_days') ~ ' preceding and 1 preceding)' %}

with

history as (

    select
        *,
        {{ day_number('listen_date') }} as day_number
    from {{ ref('user_day_features') }}
    where listen_date >= {{ history_window_start() }}
        and listen_date < {{ listen_window_end() }}

),

windowed as (

    select
        user_id,
        listen_date,
        count(*) {{ history_frame }} as baseline_days,
        {%- for signal in signals %}
        {{ window_quantile(signal.metric, 0.5) }} {{ history_frame }} as usual_{{ signal.metric }},
        -- The interquartile range / 1.349 estimates a standard deviation without being moved by
        -- outliers; log-scale signals get it in log units.
        (
            {{ window_quantile(signal_scale(signal, signal.metric), 0.75) }} {{ history_frame }}
            - {{ window_quantile(signal_scale(signal, signal.metric), 0.25) }} {{ history_frame }}
        ) / 1.349 as spread_{{ signal.metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from history

),

final as (

    select * from windowed
    where {{ in_listen_window() }}

)

select * from final
