# The short dates of the pages in English: "26 May 2026" (see ../nl/formats.py).
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
