from django.db import migrations, models

# The e-mail to the approvers when approval of a draft is requested is logged like every other e-mail.
# Only the choices change; the column stays as it is. (Numbered 0020: 0019 was written alongside, on
# another branch; when both are merged, this one depends on it.)


class Migration(migrations.Migration):
    dependencies = [
        ("guidelines", "0019_guideline_titles_per_language"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notificationlog",
            name="kind",
            field=models.CharField(
                choices=[("announcement", "announcement"), ("reminder", "reminder"), ("nudge", "reminder sent by HR"),
                         ("escalation", "escalation to the manager"), ("approval", "approval request")],
                max_length=12, verbose_name="kind"),
        ),
    ]
