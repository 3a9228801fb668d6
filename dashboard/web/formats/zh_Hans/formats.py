"""Simplified Chinese numbers as CLDR and the Huawei Cloud console write them: 1,234,567.

Django's own zh_Hans formats group by four digits with no separator (1234567), which makes the
table's counters hard to read at a glance.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
