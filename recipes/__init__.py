"""The training recipes (YAML files). Installed as the data package `regnet_tf.recipes`; see docs/RECIPES.md."""
