{#
  The model has one row per `key` and none of `columns` is null, in one read of the model: a
  failing row is a key that repeats or whose row has a null in any of the columns. Where reading
  the model is the expensive part (a view that localises every play), one grouped read costs a
  third less than a unique test and a not-null test reading it once each, and far less than one
  not_null test per column.
#}
{% test one_complete_row_per(model, key, columns) %}

select {{ key }}, count(*) as rows_with_key
from {{ model }}
group by {{ key }}
having count(*) > 1{% for column in columns %}
    or count({{ column }}) < count(*){% endfor %}

{% endtest %}
