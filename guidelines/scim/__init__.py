"""SCIM 2.0 provisioning (/scim/v2/): protocol.py reads and writes SCIM, views.py answers; provisioning.py decides."""
