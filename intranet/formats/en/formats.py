# The short dates of the pages in English: "26 May 2026", on one line (see ../nl/formats.py).
SHORT_DATE_FORMAT = "j\u00a0M\u00a0Y"
SHORT_DATETIME_FORMAT = "j\u00a0M\u00a0Y, H:i"
