{#-
  The day's median over users of value / usual, counting the users whose raw_z deviation exists
  (those with a baseline); 1 when fewer than var min_users_for_day_effect have one, as for the
  population's day effect. Aggregate: use in a query grouped by listen_date.
-#}
{% macro day_median_ratio(value, usual, raw_z) -%}
    case
        when count({{ raw_z }}) >= {{ var('min_users_for_day_effect') }}
            then {{ quantile('case when ' ~ raw_z ~ ' is not null then ' ~ value ~ ' / nullif(' ~ usual ~ ', 0) end', 0.5) }}
        else 1
    end
{%- endmacro %}
