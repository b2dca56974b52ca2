"""dvr-server's database: models, engine and sessions, migrations."""
