{#
  None of `columns` is null, in one read of the model: a failing row is a row with a null in any
  of them. Where reading the model is the expensive part (a view that localises every play),
  one test over all the columns costs one read where one not_null test per column costs one each.
#}
{% test not_null_columns(model, columns) %}

select {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns %}{{ column }} is null{{ ' or ' if not loop.last }}{% endfor %}

{% endtest %}
