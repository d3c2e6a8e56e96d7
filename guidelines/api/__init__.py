"""The REST API for GRC tools (/api/v1/): Django REST framework, its schema by drf-spectacular."""
