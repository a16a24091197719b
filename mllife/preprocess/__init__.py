"""Preprocessing: the one transformation saved inside each artifact and used alike by
training, evaluation and serving -- images, tables, column batches, model inputs."""
