# Dates in Dutch as Dutch writes them: month names and their abbreviations in lower case ("26 mei 2026").
# Django's own "M" capitalises the abbreviation ("26 Mei"); "b" does not. Templates name these formats
# (date:"SHORT_DATE_FORMAT") instead of writing a format string, so each language gets its own.
SHORT_DATE_FORMAT = "j b Y"
SHORT_DATETIME_FORMAT = "j b Y, H:i"
