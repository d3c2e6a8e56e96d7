"""PDF evidence reports: the auditor pack and the certificate.

- contents: what a pack contains, the auditor's choices checked (PackRequest), the evidence gathered;
- rendering: WeasyPrint and pikepdf, the print templates' safety (escaping, the URL fetcher);
- jobs: generating (in steps several workers can share), storing, the certificate;
- verification: checking a PDF someone holds against the reports on record.
"""
