"""Training: recipes (schema, files, overrides), optimization (schedules, weight decay, EMA), the distributed
training loop with checkpoints, and SavedModel export. Imports TensorFlow.

    from regnet_tf.train import recipe
    r = recipe.load("resnet_rs_152_224", overrides=["train.epochs=2"])
"""
