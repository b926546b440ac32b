from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChain',
            fields=[
                ('key', models.CharField(max_length=40, primary_key=True, serialize=False)),
                ('last_seq', models.BigIntegerField(default=0)),
                ('last_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name='auditlog',
            name='chain',
            field=models.CharField(default='', editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name='auditlog',
            name='hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditlog',
            name='prev_hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditlog',
            name='seq',
            field=models.BigIntegerField(default=0, editable=False),
        ),
    ]
