# Duplicate inbound calls are detected per tenant (issue 15, item 9).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_hooks', '0006_event_is_test'),
    ]

    operations = [
        migrations.AddField(
            model_name='inboundwebhook',
            name='tenant',
            field=models.CharField(blank=True, default='', max_length=255, verbose_name='tenant'),
        ),
        migrations.RemoveConstraint(
            model_name='inboundwebhook',
            name='hooks_inbound_unique_id',
        ),
        migrations.AddConstraint(
            model_name='inboundwebhook',
            constraint=models.UniqueConstraint(fields=('source', 'tenant', 'webhook_id'), name='hooks_inbound_unique_tenant_id'),
        ),
    ]
