{#
  Grain test: no two rows share the same values of `columns`.
  A failing row is a key combination that appears more than once, with its count.
#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
