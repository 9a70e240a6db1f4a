# Telemetry (traceparent), failure warnings and replay missing (issue 19). Numbered 0011: 0007-0010
# land on other branches; the merge puts this one after them.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_hooks', '0009_endpoint_auth'),
    ]

    operations = [
        migrations.AddField(
            model_name='endpoint',
            name='enabled_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='re-enabled at'),
        ),
        migrations.AddField(
            model_name='endpoint',
            name='failure_warnings_sent',
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name='endpoint',
            name='last_disabled_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='endpoint',
            name='send_traceparent',
            field=models.BooleanField(default=False, help_text="Send the W3C traceparent header of the request that sent each event (OpenTelemetry), so the receiver's traces continue ours.", verbose_name='send traceparent'),
        ),
        migrations.AddField(
            model_name='event',
            name='traceparent',
            field=models.CharField(blank=True, default='', editable=False, max_length=55),
        ),
    ]
