# Dates in Dutch as Dutch writes them: month names and their abbreviations in lower case ("26 mei 2026").
# Django's own "M" capitalises the abbreviation ("26 Mei"); "b" does not. Templates name these formats
# (date:"SHORT_DATE_FORMAT") instead of writing a format string, so each language gets its own.
# Day, month and year are joined by no-break spaces: a date never wraps over two lines in a table.
SHORT_DATE_FORMAT = "j\u00a0b\u00a0Y"
SHORT_DATETIME_FORMAT = "j\u00a0b\u00a0Y, H:i"
