"""Training: recipes (schema, files, overrides), optimization (schedules, weight decay, EMA), the distributed
training loop with checkpoints, evaluation and SavedModel export.

    from regnet_tf.train import recipe
    r = recipe.load("resnet_rs_152_224", overrides=["train.epochs=2"])

Modules: `recipe` (the schema and YAML files; no TensorFlow), `optim` (schedules, weight decay, EMA, the loss),
`distribute` (strategies, precision, XLA, the chief), `logs` (TensorBoard + metrics.jsonl), `trainer` (the
Trainer: steps, checkpoints, evaluation, the training loop, export), `evaluate` (a model_dir's recipe, the serving
copy of a model, SavedModel evaluation), `export` (the SavedModel with its serving signatures).
"""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a bad model_dir, no checkpoint); the message says why and what to do."""
