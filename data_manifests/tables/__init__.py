"""One module per table (or group of tables); each declares its schema with
``data_manifests.schema.register``. ``data_manifests.schema.get`` imports them all."""
