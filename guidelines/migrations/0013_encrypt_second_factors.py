"""Authenticator apps' secrets and recovery codes' seeds were stored as allauth stores them, in plain
text; from now on the MFA adapter encrypts them (guidelines.accounts.second_factor_cipher). This
encrypts the rows made before."""

from cryptography.fernet import InvalidToken
from django.db import migrations

SECRETS = {"totp": ["secret"], "recovery_codes": ["seed"]}


def _encrypted(cipher, text):
    try:
        cipher.decrypt(text.encode())
        return text  # already encrypted
    except InvalidToken:
        return cipher.encrypt(text.encode()).decode()


def encrypt_existing(apps, schema_editor):
    from guidelines.accounts import second_factor_cipher

    cipher = second_factor_cipher()
    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=SECRETS):
        data = dict(authenticator.data)
        for key in SECRETS[authenticator.type]:
            if key in data:
                data[key] = _encrypted(cipher, data[key])
        if "migrated_codes" in data:
            data["migrated_codes"] = [_encrypted(cipher, code) for code in data["migrated_codes"]]
        Authenticator.objects.filter(pk=authenticator.pk).update(data=data)


def decrypt_existing(apps, schema_editor):
    from guidelines.accounts import second_factor_cipher

    cipher = second_factor_cipher()
    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=SECRETS):
        data = dict(authenticator.data)
        for key in [*SECRETS[authenticator.type]]:
            if key in data:
                data[key] = cipher.decrypt(data[key].encode()).decode()
        if "migrated_codes" in data:
            data["migrated_codes"] = [cipher.decrypt(code.encode()).decode() for code in data["migrated_codes"]]
        Authenticator.objects.filter(pk=authenticator.pk).update(data=data)


class Migration(migrations.Migration):

    dependencies = [
        ("guidelines", "0012_sso_evidence"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_existing, decrypt_existing)]
