{#
  The number of the run of days each row of a user belongs to, over rows ordered by listen_date
  with previous_listen_date, the listen_date of the user's row before: a row goes on from that one
  when goes_on holds and it comes at most max_gap_days days without a row after it; any other row
  starts a new run. Runs of near-silent days and of days with overlapping plays are numbered so.
#}
{% macro day_run_number(max_gap_days, goes_on='true') -%}
    sum(
        case
            when {{ goes_on }}
                and {{ day_number('listen_date') }} - {{ day_number('previous_listen_date') }} <= 1 + {{ max_gap_days }}
                then 0
            else 1
        end
    ) over (partition by user_id order by listen_date rows between unbounded preceding and current row)
{%- endmacro %}

{#
  Each user's last row of this incremental model (matching condition) among the max_gap_days + 1
  days before the days the run restates: where a run of days the last run wrote may go on from.
#}
{% macro last_row_before_restated_days(max_gap_days, condition='true') -%}
    select *
    from (
        select
            *,
            row_number() over (partition by user_id order by listen_date desc) as days_back
        from {{ this }}
        where {{ condition }}
            and listen_date >= cast({{ dbt.dateadd('day', -1 - (max_gap_days | int), restated_window_start()) }} as date)
            and listen_date < {{ restated_window_start() }}
    ) as stored_days
    where days_back = 1
{%- endmacro %}
